package config

import (
	"errors"
	"strings"
	"testing"
)

// badURLs are URL settings with a password that fail validation in different ways: the
// scheme, plain http to a remote host, a form url.Parse refuses (so url.URL.Redacted cannot
// help), a password whose '/', '#' or '?' moves where the host seems to start, no scheme.
var badURLs = []struct {
	url     string
	proxyOK bool // a valid proxy URL: a proxy may carry credentials
}{
	{"ftp://alice:pw-Secret42@host.example.com", false},
	{"http://alice:pw-Secret42@host.example.com", true},
	{"https://alice:pw-Secret42@host.example.com:80x", false},
	{"https://alice:pw%zzSecret42@host.example.com", false},
	{"https://alice:pw/Secret42@host.example.com", false},
	{"https://alice:pw#Secret42@host.example.com", false},
	{"https://alice:pw?Secret42@host.example.com", false},
	{"alice:pw-Secret42@host.example.com", false},
	{"//alice:pw-Secret42@host.example.com", false},
	{"https://alice:pw-Secret42@host.example.com/?tenant=x", true},
	{"https://alice:p@ss-Secret42@host.example.com", true},
}

// No URL setting prints a password from a URL it refuses, in either mode, and each still
// shows which URL it means.
func TestURLErrorsHideCredentials(t *testing.T) {
	settings := []struct{ env, param string }{
		{"DEFENDER_API_URL", "api_url"},
		{"DEFENDER_LOGIN_URL", "login_url"},
		{"DEFENDER_HEC_URL", "hec_url"},
		{"DEFENDER_PROXY_URL", "proxy_url"},
	}
	for _, s := range settings {
		for _, b := range badURLs {
			bad := b.url
			if s.env == "DEFENDER_PROXY_URL" && b.proxyOK {
				continue
			}
			check := func(t *testing.T, err error, name string) {
				t.Helper()
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != name {
					t.Fatalf("err = %v, want an error naming %s", err, name)
				}
				if strings.Contains(err.Error(), "Secret42") {
					t.Errorf("the error shows the password: %v", err)
				}
				if !strings.Contains(err.Error(), "host.example.com") && ce.Value != "" {
					t.Errorf("the error no longer shows which URL: %v", err)
				}
			}
			t.Run(s.env+"="+bad, func(t *testing.T) {
				env := good()
				env[s.env] = bad
				setEnv(t, env)
				_, err := FromEnv()
				check(t, err, s.env)
			})
			t.Run(s.param+"="+bad, func(t *testing.T) {
				p := goodParams()
				p[s.param] = bad
				if s.param == "hec_url" {
					p["output"], p["hec_token"] = "hec", "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
				}
				_, err := FromParams(p, t.TempDir(), "tenant1")
				check(t, err, s.param)
			})
		}
	}
}
