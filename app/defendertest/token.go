package defendertest

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Resource is the commercial cloud's API resource; the v2 scope is Resource + "/.default".
const Resource = "https://api.securitycenter.microsoft.com"

type entraErr struct {
	status int
	code   string
	num    int
	desc   string
}

func (s *Server) tokenFail(w http.ResponseWriter, e entraErr) {
	s.stats.TokenRejected++
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	trace := "255d1aef-8c98-452f-ac51-23d051240864"
	body := map[string]any{
		"error":             e.code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7\r\nTimestamp: %s", e.num, e.desc, trace, time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{e.num},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    "fb3d2015-bc17-4bb9-bb85-30c5cf1aaaa7",
	}
	_ = json.NewEncoder(w).Encode(body)
}

// grant is what an issued access token grants.
type grant struct {
	exp time.Time // real time
	aud string    // Resource, or the Graph host (GraphMode)
}

// knownAudience says whether the tenant has the API as a resource: the Alert API always,
// and the configured cloud's Graph in GraphMode (another cloud's Graph is not found there).
func (s *Server) knownAudience(aud string) bool {
	return aud == Resource || (s.opt.Mode == GraphMode && aud == s.opt.GraphHost) || (s.opt.Mode == IncidentsMode && aud == s.opt.XDRHost)
}

// token serves both token endpoints: v2 (scope) and v1 (resource, numbers as strings).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v1 := !strings.Contains(r.URL.Path, "/v2.0/")
	if err := r.ParseForm(); err != nil {
		s.tokenFail(w, entraErr{400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."})
		return
	}
	f := r.PostForm
	tenant := r.PathValue("tenant")
	switch {
	case tenant != s.opt.TenantID && (s.opt.TenantDomain == "" || !strings.EqualFold(tenant, s.opt.TenantDomain)):
		s.tokenFail(w, entraErr{400, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)})
		return
	case f.Get("grant_type") != "client_credentials":
		s.tokenFail(w, entraErr{400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."})
		return
	case f.Get("client_id") != s.opt.ClientID:
		s.tokenFail(w, entraErr{400, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory.", f.Get("client_id"))})
		return
	}
	aud := f.Get("resource")
	if v1 {
		if !s.knownAudience(aud) {
			s.tokenFail(w, entraErr{400, "invalid_resource", 500011, "The resource principal named " + aud + " was not found in the tenant."})
			return
		}
	} else if aud, _ = strings.CutSuffix(f.Get("scope"), "/.default"); !s.knownAudience(aud) || !strings.HasSuffix(f.Get("scope"), "/.default") {
		s.tokenFail(w, entraErr{400, "invalid_scope", 70011, fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", f.Get("scope"))})
		return
	}
	switch {
	case f.Has("client_assertion"):
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			s.tokenFail(w, entraErr{400, "invalid_request", 700025, "client_assertion_type is invalid."})
			return
		}
		if code, msg := s.checkAssertion(f.Get("client_assertion"), "http://"+r.Host+r.URL.Path); msg != "" {
			s.tokenFail(w, entraErr{401, "invalid_client", code, msg})
			return
		}
	case f.Has("client_secret"):
		if f.Get("client_secret") != s.opt.ClientSecret || s.opt.ClientSecret == "" {
			s.tokenFail(w, entraErr{401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + s.opt.ClientID + "'."})
			return
		}
		if s.opt.SecretExpired {
			s.tokenFail(w, entraErr{401, "invalid_client", 7000222, "The provided client secret keys for app '" + s.opt.ClientID + "' are expired."})
			return
		}
	default:
		s.tokenFail(w, entraErr{401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."})
		return
	}
	var raw [24]byte
	_, _ = randRead(raw[:])
	access := "eyJ0eXAiOiJKV1Qi." + base64.RawURLEncoding.EncodeToString(raw[:])
	life := s.opt.TokenLifetime
	s.tokens[access] = grant{exp: time.Now().Add(life), aud: aud}
	s.stats.TokensIssued++
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	secs := int(life / time.Second)
	if secs < 1 {
		secs = 1
	}
	if v1 {
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":"%d","ext_expires_in":"%d","expires_on":"%d","resource":%q,"access_token":%q}`,
			secs, secs, time.Now().Add(life).Unix(), aud, access)
		return
	}
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"ext_expires_in":%d,"access_token":%q}`, secs, secs, access)
}

// checkAssertion verifies a certificate client assertion as Entra ID does. It returns what is
// wrong, or "".
func (s *Server) checkAssertion(jwt, tokenURL string) (int, string) {
	if s.opt.Certificate == nil {
		return 700027, "The app has no certificate registered."
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return 700027, "Client assertion is not a JWT."
	}
	var hdr struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var cl struct {
		Aud, Iss, Sub, Jti string
		Nbf, Exp, Iat      int64
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(cb, &cl) != nil {
		return 700027, "Client assertion is not a well-formed JWT."
	}
	raw := s.opt.Certificate.Raw
	s1, s256 := sha1.Sum(raw), sha256.Sum256(raw)
	if hdr.X5t != base64.RawURLEncoding.EncodeToString(s1[:]) && hdr.X5tS256 != base64.RawURLEncoding.EncodeToString(s256[:]) {
		return 700027, fmt.Sprintf("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s']", strings.ToUpper(hex.EncodeToString(mustB64(hdr.X5t))))
	}
	pub, ok := s.opt.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok {
		return 700027, "The registered certificate has no RSA key."
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch hdr.Alg {
	case "RS256":
		err1 = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case "PS256":
		err1 = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
	default:
		return 700027, "Client assertion uses an unsupported algorithm."
	}
	if err1 != nil {
		return 700027, "Client assertion contains an invalid signature."
	}
	now := s.opt.Now().Unix() // Entra ID reckons nbf and exp on its own clock
	switch {
	case cl.Aud != tokenURL:
		return 700027, fmt.Sprintf("The audience claim value is invalid '%s'.", cl.Aud)
	case cl.Iss != s.opt.ClientID || cl.Sub != s.opt.ClientID:
		return 700027, "Client assertion iss and sub must be the client id."
	case cl.Jti == "" || s.jtis[cl.Jti]:
		return 700027, "The jti claim is missing or was already used."
	case cl.Exp <= now || cl.Nbf > now+60 || cl.Exp-cl.Nbf > 3600:
		return 700024, "Client assertion is not within its valid time range. Current time: " + time.Unix(now, 0).UTC().Format("2006-01-02T15:04:05.0000000Z") + "."
	case s.opt.Now().After(s.opt.Certificate.NotAfter):
		return 700027, "The certificate used to sign the client assertion is expired."
	}
	s.jtis[cl.Jti] = true
	return 0, ""
}

func mustB64(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	if b == nil {
		return bytes.Repeat([]byte{0}, 20)
	}
	return b
}

// grantOf is what an access token grants: one this stand-in issued, else one its Login did.
// The caller holds s.mu.
func (s *Server) grantOf(tok string) (grant, bool) {
	if g, ok := s.tokens[tok]; ok {
		return g, true
	}
	if l := s.opt.Login; l != nil && l != s {
		l.mu.Lock()
		defer l.mu.Unlock()
		g, ok := l.tokens[tok]
		return g, ok
	}
	return grant{}, false
}
