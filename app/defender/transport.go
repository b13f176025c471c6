package defender

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"golang.org/x/net/http/httpproxy"

	"ta-defender-alerts/app/netaddr"
)

// proxyFunc picks the proxy for a request: the explicit proxy URL if set, else HTTPS_PROXY /
// HTTP_PROXY; NO_PROXY applies to both, and loopback addresses are never proxied.
func proxyFunc(explicit *url.URL) func(*http.Request) (*url.URL, error) {
	cfg := httpproxy.FromEnvironment()
	if explicit != nil {
		cfg.HTTPSProxy = explicit.String()
		cfg.HTTPProxy = explicit.String()
	}
	f := cfg.ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return f(r.URL) }
}

// parseProxyURL checks a proxy URL; errors never show its password.
func parseProxyURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &FieldError{Field: "ProxyURL", Msg: "is not a URL such as http://proxy.example.com:3128"}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &FieldError{Field: "ProxyURL", Value: netaddr.RedactURL(raw), Msg: "must be an http:// or https:// URL with a host"}
	}
	return u, nil
}

// rootCAs returns the system roots plus the certificates of caFile, if any.
func rootCAs(field, caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil // the system roots
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, &FieldError{Field: field, Value: caFile, Msg: "cannot be read", Err: errors.Unwrap(err)}
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, &FieldError{Field: field, Value: caFile, Msg: "holds no PEM certificate"}
	}
	return pool, nil
}

func newTransport(proxy *url.URL, roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:                 proxyFunc(proxy),
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute, // a 10,000-alert page takes the API a while
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
		ForceAttemptHTTP2:     true,
	}
}
