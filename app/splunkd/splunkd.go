// Package splunkd talks to the local splunkd's REST API with the session key a modular input
// receives: the app's secrets in storage/passwords, and the input's own settings. It owns the
// trust in splunkd's certificate: the CA splunkd is configured with, read from server.conf.
package splunkd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"ta-defender-alerts/app/netaddr"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/textclean"
)

// Client calls one splunkd as one app.
type Client struct {
	base *url.URL
	key  secret.String
	app  string
	hc   *http.Client

	log         *slog.Logger
	loopback    bool
	ca          caSource
	roots       *x509.CertPool // nil when caErr is set
	caErr       error
	warnOnce    sync.Once
	defaultOnce sync.Once
}

// New makes a client for server_uri, with the session key splunkd handed the input. log gets
// the client's warnings (nil: dropped).
//
// splunkd's certificate is verified against the CA splunkd itself is configured with: server.conf
// [sslConfig] sslRootCAPath (etc/system/local over the apps over etc/system/default), else
// $SPLUNK_HOME/etc/auth/cacert.pem. On a loopback server_uri (what splunkd hands an input) a
// certificate that fails this check is a warning, logged once, and the call goes on: the
// connection does not leave the host. Any other server_uri must be https, its chain must
// verify, and so must its host name, unless the certificate is Splunk's default one
// (CN=SplunkServerDefaultCert, naming no host), which is then used with a warning.
func New(serverURI string, sessionKey secret.String, app, splunkHome string, log *slog.Logger) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURI, "/"))
	if err != nil {
		return nil, errors.New("splunkd server_uri is not a URL")
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("splunkd server_uri %s is not an http(s) URL", u.Redacted())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{base: u, key: sessionKey, app: app, log: log, loopback: netaddr.IsLoopback(u.Hostname())}
	if !c.loopback && u.Scheme != "https" {
		return nil, fmt.Errorf("splunkd server_uri %s is not on this host, so it must be https: the session key would cross the network in clear", u.Redacted())
	}
	c.ca, c.caErr = splunkdCA(splunkHome)
	if c.caErr == nil {
		c.roots, c.caErr = loadCA(c.ca)
	}
	if c.caErr != nil && !c.loopback {
		return nil, fmt.Errorf("splunkd at %s cannot be verified: %w", u.Host, c.caErr)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12,
		// Go's own check would require the host name, which Splunk's default certificate and
		// a loopback address do not carry; verify does the checks that apply instead.
		InsecureSkipVerify: true, //nolint:gosec // replaced by VerifyConnection
		VerifyConnection:   c.verify}
	tr := &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil, ResponseHeaderTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	c.hc = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	return c, nil
}

func loadCA(src caSource) (*x509.CertPool, error) {
	b, err := os.ReadFile(src.path)
	if err != nil {
		return nil, fmt.Errorf("the CA file %s (%s) cannot be read: %w", src.path, src.from, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("the CA file %s (%s) holds no PEM certificate", src.path, src.from)
	}
	return pool, nil
}

// defaultCertCN is the common name of the certificate Splunk generates for splunkd.
const defaultCertCN = "SplunkServerDefaultCert"

// isDefaultCert reports whether c is Splunk's default certificate: it names no host.
func isDefaultCert(c *x509.Certificate) bool {
	return c.Subject.CommonName == defaultCertCN && len(c.DNSNames) == 0 && len(c.IPAddresses) == 0 && len(c.URIs) == 0
}

func (c *Client) verify(cs tls.ConnectionState) error {
	err := c.check(cs.PeerCertificates)
	if err != nil && c.loopback {
		c.warnOnce.Do(func() {
			c.log.Warn("splunkd's certificate could not be verified; splunkd is on this host, so the input goes on. "+
				"Point server.conf [sslConfig] sslRootCAPath at the CA that signed splunkd's certificate to remove this warning",
				"server_uri", c.base.Redacted(), "error", err.Error())
		})
		return nil
	}
	return err
}

// check verifies the chain against splunkd's CA, and, off this host, the host name.
func (c *Client) check(certs []*x509.Certificate) error {
	if c.caErr != nil {
		return c.caErr
	}
	if len(certs) == 0 {
		return errors.New("splunkd sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("splunkd's certificate (subject %q) is not signed by the CA in %s (%s): %w", leaf.Subject.CommonName, c.ca.path, c.ca.from, err)
	}
	if c.loopback {
		return nil // a loopback address is rarely named in a certificate, and the connection stays on this host
	}
	host := c.base.Hostname()
	if isDefaultCert(leaf) {
		c.defaultOnce.Do(func() {
			c.log.Warn("splunkd presents Splunk's default certificate (CN="+defaultCertCN+"), which names no host: its chain was verified, its host name cannot be. "+
				"Give splunkd a certificate that names this host (server.conf [sslConfig] serverCert)", "host", host)
		})
		return nil
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("splunkd's certificate (subject %q) does not name %s, the host of server_uri: %w", leaf.Subject.CommonName, host, err)
	}
	return nil
}

// callError is a failed splunkd call.
type callError struct {
	Op     string
	Status int
	Msg    string
}

func (e *callError) Error() string {
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
	u.RawQuery = "output_mode=json"
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
		return &callError{Op: op, Msg: textclean.Line(err.Error())}
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
		// splunkd's text goes into logs and onto terminals: one short printable line.
		return &callError{Op: op, Status: resp.StatusCode, Msg: textclean.Line(msg)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &callError{Op: op, Status: resp.StatusCode, Msg: "the reply is not JSON: " + err.Error()}
		}
	}
	return nil
}

// Password returns the clear password of realm's user, and whether it is stored. It asks
// splunkd for that one entity (storage/passwords/<realm>:<user>:), never for the list: a
// list holds the clear password of every entry the session may read, other apps' and other
// realms' among them, which this input has no business seeing.
func (c *Client) Password(ctx context.Context, realm, user string) (secret.String, bool, error) {
	var r struct {
		Entry []struct {
			Content struct {
				Realm         string `json:"realm"`
				Username      string `json:"username"`
				ClearPassword string `json:"clear_password"`
			} `json:"content"`
		} `json:"entry"`
	}
	err := c.do(ctx, "read storage/passwords", http.MethodGet, c.endpoint("storage", "passwords", entityName(realm, user)), nil, &r)
	var se *callError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	for _, e := range r.Entry {
		if e.Content.Realm == realm && e.Content.Username == user {
			return secret.String(e.Content.ClearPassword), true, nil
		}
	}
	return "", false, &callError{Op: "read storage/passwords", Status: http.StatusOK, Msg: "the reply holds no entry for the realm and user asked for"}
}

// entityName is storage/passwords' name for realm and user: realm:user: with colons escaped.
func entityName(realm, user string) string {
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`)
	return esc.Replace(realm) + ":" + esc.Replace(user) + ":"
}

// SetPassword stores a password, replacing an existing one.
func (c *Client) SetPassword(ctx context.Context, realm, user string, pw secret.String) error {
	err := c.do(ctx, "create storage/passwords", http.MethodPost, c.endpoint("storage", "passwords"), url.Values{"name": {user}, "password": {pw.Reveal()}, "realm": {realm}}, nil)
	var se *callError
	if errors.As(err, &se) && se.Status == http.StatusConflict {
		err = c.do(ctx, "update storage/passwords", http.MethodPost, c.endpoint("storage", "passwords", entityName(realm, user)), url.Values{"password": {pw.Reveal()}}, nil)
	}
	return err
}

// DeletePassword removes a password; a missing one is fine.
func (c *Client) DeletePassword(ctx context.Context, realm, user string) error {
	err := c.do(ctx, "delete storage/passwords", http.MethodDelete, c.endpoint("storage", "passwords", entityName(realm, user)), nil, nil)
	var se *callError
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
