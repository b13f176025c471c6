package defender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TokenReason says why Entra ID refused a token.
type TokenReason string

const (
	WrongSecret    TokenReason = "wrong client secret"
	ExpiredSecret  TokenReason = "expired client secret"
	UnknownClient  TokenReason = "unknown client id"
	UnknownTenant  TokenReason = "unknown tenant"
	BadCertificate TokenReason = "certificate rejected"
	BadScope       TokenReason = "API scope rejected"
	NotProvisioned TokenReason = "Defender for Endpoint not provisioned"
	AppDisabled    TokenReason = "application disabled"
	TokenFailed    TokenReason = "token request failed"
)

// TokenError is a failed token request, turned into something an admin can act on. It never
// carries Entra's raw reply (trace and correlation ids, timestamps).
type TokenError struct {
	Reason    TokenReason
	Code      int // the AADSTS number, 0 when unknown
	Status    int // HTTP status of the token endpoint, 0 for network errors
	Hint      string
	transient bool // network errors, 5xx and 429: worth retrying
	Err       error
}

func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("Entra ID token: ")
	b.WriteString(string(e.Reason))
	if e.Code != 0 {
		fmt.Fprintf(&b, " (AADSTS%d)", e.Code)
	} else if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	if e.Err != nil && e.Code == 0 {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *TokenError) Unwrap() error { return e.Err }

// Retryable reports whether the failure clears by itself (the token endpoint was unreachable,
// busy or failing); a refusal of the app, its secret or its certificate needs a person.
func (e *TokenError) Retryable() bool { return e.transient }

type tokenHint struct {
	reason TokenReason
	hint   string
}

// AADSTS codes of the client-credentials flow and what an admin does about each.
var tokenHints = map[int]tokenHint{
	7000215: {WrongSecret, "the client secret is not valid for this app; copy the secret's Value (not its Secret ID) from Entra ID → App registrations → your app → Certificates & secrets"},
	7000222: {ExpiredSecret, "the client secret has expired; create a new one in Entra ID → App registrations → your app → Certificates & secrets, and configure it here"},
	700016:  {UnknownClient, "no application with this client id exists in the tenant; check the client (application) id and the tenant id, and that the app was consented in this tenant"},
	90002:   {UnknownTenant, "the tenant was not found; check the tenant id (a GUID or a domain such as contoso.onmicrosoft.com) and the cloud"},
	900023:  {UnknownTenant, "the tenant id is neither a GUID nor a valid domain name"},
	90033:   {UnknownTenant, "the tenant id is not valid in this cloud; check the tenant id and the cloud"},
	700027:  {BadCertificate, "Entra ID could not verify the certificate assertion; upload this certificate's public part to the app (Certificates & secrets → Certificates), and check that it has not expired"},
	700024:  {BadCertificate, "the certificate assertion is outside its valid time; check this machine's clock"},
	700023:  {BadCertificate, "the certificate assertion's audience is wrong; check the cloud and the login URL"},
	70011:   {BadScope, "the API scope is not valid; check the cloud setting (commercial, gcc, gcc-high or dod)"},
	500011:  {NotProvisioned, "the WindowsDefenderATP API is not provisioned in this tenant or cloud; check that Defender for Endpoint is enabled and the cloud setting is right"},
	7000112: {AppDisabled, "the application is disabled in Entra ID; enable it (Enterprise applications → your app → Properties)"},
	700025:  {BadCertificate, "the app is a public client and cannot use a client secret or certificate; in Entra ID → App registrations → Authentication, turn off 'Allow public client flows'"},
}

// tokenErrorFrom turns an oauth2 error into a *TokenError.
func tokenErrorFrom(err error) *TokenError {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// Network failure or timeout reaching the token endpoint.
		return &TokenError{Reason: TokenFailed, transient: true, Err: err,
			Hint: "could not reach the Entra ID token endpoint; check the network, proxy and login URL"}
	}
	te := &TokenError{Reason: TokenFailed}
	if re.Response != nil {
		te.Status = re.Response.StatusCode
	}
	var body struct {
		Error      string `json:"error"`
		ErrorCodes []int  `json:"error_codes"`
	}
	_ = json.Unmarshal(re.Body, &body)
	if len(body.ErrorCodes) > 0 {
		te.Code = body.ErrorCodes[0]
	}
	if h, ok := tokenHints[te.Code]; ok {
		te.Reason, te.Hint = h.reason, h.hint
		return te
	}
	switch {
	case te.Status == http.StatusTooManyRequests || te.Status >= 500:
		te.transient = true
		te.Hint = "the Entra ID token endpoint is busy or failing; retrying"
	case body.Error != "":
		te.Hint = "Entra ID answered " + oneLine(body.Error, 200)
	default:
		te.Hint = "the token endpoint did not answer like Entra ID; check the login URL"
	}
	return te
}

// printable drops C0 and C1 control characters (ESC, CSI, DEL, …).
func printable(r rune) rune {
	if r < 0x20 || (r >= 0x7f && r < 0xa0) {
		return -1
	}
	return r
}

// fetchFunc gets a new token from Entra ID.
type fetchFunc func(ctx context.Context) (*oauth2.Token, error)

// secretFetcher uses x/oauth2's client credentials flow with a client secret.
func secretFetcher(ep Endpoints, clientID, secret string, hc *http.Client) fetchFunc {
	cc := &clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     ep.TokenURL,
		Scopes:       []string{ep.Scope},
		AuthStyle:    oauth2.AuthStyleInParams, // one request; no probing of header styles
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		return cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	}
}

// certFetcher signs a fresh JWT client assertion for every token request. Its nbf and exp
// are on Microsoft's clock: Entra ID refuses an assertion from a clock minutes off
// (AADSTS700024). Before any reply has shown Microsoft's time, the host's clock is used; if
// Entra ID refuses the assertion's time and its reply moved the clock, the assertion is
// signed again on the corrected clock, once.
func certFetcher(ep Endpoints, clientID string, cert *certificate, hc *http.Client, clock *apiClock) fetchFunc {
	return func(ctx context.Context) (*oauth2.Token, error) {
		for try := 0; ; try++ {
			signedAt := clock.now()
			assertion, err := cert.assertion(clientID, ep.TokenURL, signedAt)
			if err != nil {
				return nil, err
			}
			cc := &clientcredentials.Config{
				ClientID:  clientID,
				TokenURL:  ep.TokenURL,
				Scopes:    []string{ep.Scope},
				AuthStyle: oauth2.AuthStyleInParams,
				EndpointParams: url.Values{
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {assertion},
				},
			}
			tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
			if err == nil || try > 0 {
				return tok, err
			}
			// Worth a second try only if Entra ID's reply moved the clock noticeably.
			if te := tokenErrorFrom(err); te.Code != 700024 || clock.now().Sub(signedAt).Abs() < 30*time.Second {
				return tok, err
			}
		}
	}
}

// tokenCache holds the current access token and renews it before it runs out.
type tokenCache struct {
	fetch fetchFunc
	now   func() time.Time

	mu      sync.Mutex
	tok     *oauth2.Token
	renewAt time.Time
	fetches int
}

// Token returns a valid access token, fetching a new one when the cached one is near expiry.
// fetched says the token was issued by this call.
func (c *tokenCache) Token(ctx context.Context) (access string, fetched bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.now().Before(c.renewAt) {
		return c.tok.AccessToken, false, nil
	}
	access, err = c.fetchLocked(ctx)
	return access, err == nil, err
}

// Renew fetches a new token whatever the cache holds: the API refused the cached one.
func (c *tokenCache) Renew(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetchLocked(ctx)
}

func (c *tokenCache) fetchLocked(ctx context.Context) (string, error) {
	tok, err := c.fetch(ctx)
	c.fetches++
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return "", err
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", tokenErrorFrom(err)
	}
	if tok.AccessToken == "" {
		return "", &TokenError{Reason: TokenFailed, Hint: "the token endpoint returned no access token"}
	}
	now := c.now()
	life := time.Hour // Entra's usual lifetime, when the reply says nothing
	switch {
	case tok.ExpiresIn > 0:
		life = time.Duration(tok.ExpiresIn) * time.Second
	case !tok.Expiry.IsZero():
		life = time.Until(tok.Expiry) // x/oauth2 sets Expiry from the wall clock
	}
	// Renew a quarter of the lifetime early, at most five minutes early.
	early := min(life/4, 5*time.Minute)
	c.tok, c.renewAt = tok, now.Add(life-early)
	return tok.AccessToken, nil
}

// Invalidate drops the cached token if it is still the one the API refused.
func (c *tokenCache) Invalidate(access string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == access {
		c.tok = nil
	}
}

// Fetches counts token requests made.
func (c *tokenCache) Fetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}
