// Package splunkd talks to the local splunkd's REST API with the session key a modular input
// receives: the app's secrets in storage/passwords, and the input's own settings.
package splunkd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ta-defender-alerts/app/netaddr"
	"ta-defender-alerts/app/secret"
)

// Client calls one splunkd as one app.
type Client struct {
	base *url.URL
	key  secret.String
	app  string
	hc   *http.Client
}

// New makes a client for server_uri. splunkd's certificate chain is verified against
// $SPLUNK_HOME/etc/auth/cacert.pem when that file exists, without checking the host name
// (Splunk's default certificate names SplunkServerDefaultCert); a loopback server_uri without
// that file is not verified; anything else is verified against the system roots.
func New(serverURI string, sessionKey secret.String, app, splunkHome string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURI, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("splunkd server_uri %q is not a URL", serverURI)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	cacert := filepath.Join(splunkHome, "etc", "auth", "cacert.pem")
	if pemBytes, err := os.ReadFile(cacert); splunkHome != "" && err == nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("%s holds no PEM certificate", cacert)
		}
		tlsCfg.InsecureSkipVerify = true // the chain is checked below, the host name is not
		tlsCfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		}
	} else if netaddr.IsLoopback(u.Hostname()) {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // loopback splunkd without its CA file
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil, ResponseHeaderTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	return &Client{base: u, key: sessionKey, app: app, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("splunkd sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("splunkd's certificate is not signed by $SPLUNK_HOME/etc/auth/cacert.pem: %w", err)
	}
	return nil
}

// Error is a failed splunkd call.
type Error struct {
	Op     string
	Status int
	Msg    string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("splunkd %s: %s", e.Op, e.Msg)
	}
	return fmt.Sprintf("splunkd %s: HTTP %d: %s", e.Op, e.Status, e.Msg)
}

// endpoint is the URL of the REST endpoint /servicesNS/nobody/<app>/<segs...>. splunkd decodes
// a path once, segment by segment, so each segment is escaped exactly once ("/" in an entity
// name becomes %2F): URL.Path holds the decoded path and URL.RawPath the escaped one, which
// String sends as it is.
func (c *Client) endpoint(segs ...string) url.URL {
	u := *c.base
	raw := strings.TrimRight(c.base.EscapedPath(), "/")
	for _, s := range append([]string{"servicesNS", "nobody", c.app}, segs...) {
		raw += "/" + url.PathEscape(s)
	}
	u.RawPath = raw
	u.Path, _ = url.PathUnescape(raw) // cannot fail: raw is made of escaped segments
	return u
}

func (c *Client) do(ctx context.Context, op, method string, u url.URL, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	if method == http.MethodGet {
		u.RawQuery = "output_mode=json&count=0"
	} else {
		u.RawQuery = "output_mode=json"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Splunk "+c.key.Reveal())
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Op: op, Msg: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode/100 != 2 {
		var m struct {
			Messages []struct{ Text string } `json:"messages"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(b, &m) == nil && len(m.Messages) > 0 {
			msg = m.Messages[0].Text
		}
		return &Error{Op: op, Status: resp.StatusCode, Msg: msg}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &Error{Op: op, Status: resp.StatusCode, Msg: "the reply is not JSON: " + err.Error()}
		}
	}
	return nil
}

// Passwords returns the clear passwords of realm, by user name.
func (c *Client) Passwords(ctx context.Context, realm string) (map[string]string, error) {
	var r struct {
		Entry []struct {
			Content struct {
				Realm         string `json:"realm"`
				Username      string `json:"username"`
				ClearPassword string `json:"clear_password"`
			} `json:"content"`
		} `json:"entry"`
	}
	if err := c.do(ctx, "list storage/passwords", http.MethodGet, c.endpoint("storage", "passwords"), nil, &r); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range r.Entry {
		if e.Content.Realm == realm {
			out[e.Content.Username] = e.Content.ClearPassword
		}
	}
	return out, nil
}

// entityName is storage/passwords' name for realm and user: realm:user: with colons escaped.
func entityName(realm, user string) string {
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`)
	return esc.Replace(realm) + ":" + esc.Replace(user) + ":"
}

// SetPassword stores a password, replacing an existing one.
func (c *Client) SetPassword(ctx context.Context, realm, user string, pw secret.String) error {
	err := c.do(ctx, "create storage/passwords", http.MethodPost, c.endpoint("storage", "passwords"), url.Values{"name": {user}, "password": {pw.Reveal()}, "realm": {realm}}, nil)
	var se *Error
	if errors.As(err, &se) && se.Status == http.StatusConflict {
		err = c.do(ctx, "update storage/passwords", http.MethodPost, c.endpoint("storage", "passwords", entityName(realm, user)), url.Values{"password": {pw.Reveal()}}, nil)
	}
	return err
}

// DeletePassword removes a password; a missing one is fine.
func (c *Client) DeletePassword(ctx context.Context, realm, user string) error {
	err := c.do(ctx, "delete storage/passwords", http.MethodDelete, c.endpoint("storage", "passwords", entityName(realm, user)), nil, nil)
	var se *Error
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// UpdateInput changes settings of the input scheme://name.
func (c *Client) UpdateInput(ctx context.Context, scheme, name string, params map[string]string) error {
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	return c.do(ctx, "update data/inputs/"+scheme+"/"+name, http.MethodPost, c.endpoint("data", "inputs", scheme, name), form, nil)
}
