package defender

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"ta-defender-alerts/app/secret"
)

const (
	testTenant = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	testClient = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
)

func baseConfig() Config {
	return Config{TenantID: testTenant, ClientID: testClient, ClientSecret: secret.String("pw-never-shown")}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name      string
		give      func(*Config)
		wantAPI   string
		wantToken string
		wantScope string
	}{
		{"commercial", nil, "https://api.security.microsoft.com",
			"https://login.microsoftonline.com/" + testTenant + "/oauth2/v2.0/token", "https://api.securitycenter.microsoft.com/.default"},
		{"region eu", func(c *Config) { c.Region = "EU" }, "https://eu.api.security.microsoft.com",
			"https://login.microsoftonline.com/" + testTenant + "/oauth2/v2.0/token", "https://api.securitycenter.microsoft.com/.default"},
		{"gcc", func(c *Config) { c.Cloud = GCC }, "https://api-gcc.securitycenter.microsoft.us",
			"https://login.microsoftonline.com/" + testTenant + "/oauth2/v2.0/token", "https://api-gcc.securitycenter.microsoft.us/.default"},
		{"gcc-high", func(c *Config) { c.Cloud = GCCHigh }, "https://api-gov.securitycenter.microsoft.us",
			"https://login.microsoftonline.us/" + testTenant + "/oauth2/v2.0/token", "https://api-gov.securitycenter.microsoft.us/.default"},
		{"dod", func(c *Config) { c.Cloud = "DoD" }, "https://api-gov.securitycenter.microsoft.us",
			"https://login.microsoftonline.us/" + testTenant + "/oauth2/v2.0/token", "https://api-gov.securitycenter.microsoft.us/.default"},
		{"override keeps the cloud's scope", func(c *Config) { c.Cloud = GCCHigh; c.APIURL = "https://proxy.example.gov/defender/" },
			"https://proxy.example.gov/defender", "https://login.microsoftonline.us/" + testTenant + "/oauth2/v2.0/token",
			"https://api-gov.securitycenter.microsoft.us/.default"},
		{"loopback stand-ins", func(c *Config) { c.APIURL = "http://127.0.0.1:8080"; c.LoginURL = "http://localhost:9000" },
			"http://127.0.0.1:8080", "http://localhost:9000/" + testTenant + "/oauth2/v2.0/token", "https://api.securitycenter.microsoft.com/.default"},
		{"domain tenant", func(c *Config) { c.TenantID = "contoso.onmicrosoft.com" }, "https://api.security.microsoft.com",
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://api.securitycenter.microsoft.com/.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			if tt.give != nil {
				tt.give(&cfg)
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ep := c.Endpoints()
			if ep.API.String() != tt.wantAPI || ep.TokenURL != tt.wantToken || ep.Scope != tt.wantScope {
				t.Errorf("got %s %s %s\nwant %s %s %s", ep.API, ep.TokenURL, ep.Scope, tt.wantAPI, tt.wantToken, tt.wantScope)
			}
		})
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	caDir := t.TempDir()
	notPEM := filepath.Join(caDir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		give      func(*Config)
		wantField string
		wantMsg   string
	}{
		{"no tenant", func(c *Config) { c.TenantID = "" }, "TenantID", "is required"},
		{"bad tenant", func(c *Config) { c.TenantID = "not a tenant" }, "TenantID", "neither a GUID nor a domain"},
		{"bad client", func(c *Config) { c.ClientID = "1234" }, "ClientID", "not a GUID"},
		{"no credential", func(c *Config) { c.ClientSecret = "" }, "ClientSecret", "set exactly one"},
		{"two credentials", func(c *Config) { c.CertificatePEM = "x" }, "ClientSecret", "set exactly one"},
		{"bad certificate", func(c *Config) { c.ClientSecret = ""; c.CertificatePEM = "junk" }, "CertificatePEM", "no CERTIFICATE block"},
		{"unknown cloud", func(c *Config) { c.Cloud = "azure-china" }, "Cloud", "commercial, dod, gcc, gcc-high"},
		{"unknown region", func(c *Config) { c.Region = "mars" }, "Region", "au, eu, ina, swa, uk, us"},
		{"region outside commercial", func(c *Config) { c.Cloud = GCC; c.Region = "us" }, "Region", "commercial cloud only"},
		{"http api", func(c *Config) { c.APIURL = "http://api.example.com" }, "APIURL", "loopback addresses only"},
		{"ftp login", func(c *Config) { c.LoginURL = "ftp://login.example.com" }, "LoginURL", "https://"},
		{"relative url", func(c *Config) { c.APIURL = "api.example.com" }, "APIURL", "absolute URL"},
		{"proxy scheme", func(c *Config) { c.ProxyURL = "socks://u:pw-in-proxy@p:1080" }, "ProxyURL", "http:// or https://"},
		{"page too big", func(c *Config) { c.PageSize = 10001 }, "PageSize", "between 1 and 10000"},
		{"ca missing", func(c *Config) { c.CAFile = filepath.Join(caDir, "nope.pem") }, "CAFile", "cannot be read"},
		{"ca not pem", func(c *Config) { c.CAFile = notPEM }, "CAFile", "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.give(&cfg)
			_, err := New(cfg)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("err = %v, want a FieldError for %s", err, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("%q does not say %q", err, tt.wantMsg)
			}
			for _, leak := range []string{"pw-never-shown", "pw-in-proxy"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestProxyChoice(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://env-proxy.example.com:3128")
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "internal.example.com")
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name     string
		explicit string
		url      string
		want     string
	}{
		{"env proxy for the API", "", "https://api.security.microsoft.com/api/alerts", "http://env-proxy.example.com:3128"},
		{"env proxy for login", "", "https://login.microsoftonline.com/x/oauth2/v2.0/token", "http://env-proxy.example.com:3128"},
		{"NO_PROXY", "", "https://internal.example.com/api/alerts", ""},
		{"loopback never", "", "http://127.0.0.1:9999/api/alerts", ""},
		{"explicit wins", "http://user:pw@corp-proxy:8080", "https://api.security.microsoft.com/api/alerts", "http://user:pw@corp-proxy:8080"},
		{"explicit keeps NO_PROXY", "http://corp-proxy:8080", "https://internal.example.com/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.ProxyURL = tt.explicit
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.hc.Transport.(*clockTransport).next.(*http.Transport).Proxy(req(tt.url))
			if err != nil {
				t.Fatal(err)
			}
			gs := ""
			if got != nil {
				gs = got.String()
			}
			if gs != tt.want {
				t.Errorf("proxy %q, want %q", gs, tt.want)
			}
		})
	}
}

func TestExtraCAFileIsTrusted(t *testing.T) {
	pemDoc := selfSignedPEM(t)
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pemDoc, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.CAFile = path
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := c.hc.Transport.(*clockTransport).next.(*http.Transport).TLSClientConfig
	if tlsCfg.RootCAs == nil || tlsCfg.MinVersion < 0x0303 {
		t.Fatalf("roots %v, min version %x", tlsCfg.RootCAs, tlsCfg.MinVersion)
	}
	cert, err := parseCertificate(pemDoc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Leaf.Verify(x509VerifyOptions(tlsCfg.RootCAs)); err != nil {
		t.Errorf("the CA file's certificate is not trusted: %v", err)
	}
}

// fakeTime is an injected clock; sleeping advances it.
type fakeTime struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (f *fakeTime) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeTime) sleep(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.slept = append(f.slept, d)
	f.mu.Unlock()
	return nil
}

func TestLimiterSlidingWindows(t *testing.T) {
	clk := &fakeTime{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim := newLimiter(defaultLimits, clk.now, clk.sleep)
	var calls []time.Time
	for i := 0; i < 1600; i++ {
		if err := lim.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, clk.now())
		clk.t = clk.t.Add(10 * time.Millisecond) // the call itself takes a little time
	}
	maxIn := func(d time.Duration) int {
		best, j := 0, 0
		for i := range calls {
			for calls[i].Sub(calls[j]) >= d {
				j++
			}
			best = max(best, i-j+1)
		}
		return best
	}
	if m, h := maxIn(time.Minute), maxIn(time.Hour); m != 100 || h != 1500 {
		t.Errorf("at most %d calls in a minute and %d in an hour, want exactly 100 and 1500", m, h)
	}
	// The margin: 100 calls never come closer than 63 s (60 s + 5 %).
	if m := maxIn(63 * time.Second); m != 100 {
		t.Errorf("%d calls within 63 s, want 100", m)
	}
	// 1,500 calls use the hour: the 1,501st waits until the first leaves the window.
	if got := calls[1500].Sub(calls[0]); got < time.Hour {
		t.Errorf("call 1501 came %v after the first", got)
	}
	// A Retry-After holds every call back.
	lim.Block(30 * time.Second)
	before := clk.now()
	if err := lim.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if clk.now().Sub(before) < 30*time.Second {
		t.Errorf("Block(30s) waited only %v", clk.now().Sub(before))
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	clk := &fakeTime{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fetches := 0
	tc := &tokenCache{now: clk.now, fetch: func(context.Context) (*oauth2.Token, error) {
		fetches++
		return &oauth2.Token{AccessToken: "t" + string(rune('0'+fetches)), ExpiresIn: 3599}, nil
	}}
	get := func() string {
		s, _, err := tc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := get()
	clk.t = clk.t.Add(54 * time.Minute) // 5 min before expiry: still good
	if get() != first || fetches != 1 {
		t.Fatalf("renewed too early (%d fetches)", fetches)
	}
	clk.t = clk.t.Add(time.Minute) // inside the last five minutes: renew
	if second := get(); second == first || fetches != 2 {
		t.Fatalf("not renewed before expiry (%d fetches)", fetches)
	}
	// A 401 drops the refused token only.
	tc.Invalidate(first)
	if fetches != 2 || get() == first {
		t.Fatal("invalidating an old token must not drop the current one")
	}
	tc.Invalidate(get())
	get()
	if fetches != 3 {
		t.Errorf("a refused token was not replaced (%d fetches)", fetches)
	}
}
