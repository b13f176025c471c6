package splunkd

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/splunkdtest"
)

const testKey = "Sz3ssion-Key-from-splunkd"

// splunkHome lays out the files of a Splunk installation: path (under $SPLUNK_HOME) → content.
func splunkHome(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	for p, content := range files {
		full := filepath.Join(home, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func issue(t *testing.T, ca *splunkdtest.CA, l splunkdtest.Leaf) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t *testing.T, cn string) *splunkdtest.CA {
	t.Helper()
	ca, err := splunkdtest.NewCA(cn)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// splunkd's certificate is verified against the CA splunkd is configured with; what a failure
// does depends on whether server_uri is this host.
func TestSplunkdCertificate(t *testing.T) {
	splunkCA, defaultLeaf, err := splunkdtest.DefaultCertificate()
	if err != nil {
		t.Fatal(err)
	}
	corp := newCA(t, "Contoso Issuing CA")
	other := newCA(t, "Someone Else's CA")
	const remote = "splunk.example.com"
	corpLeaf := issue(t, corp, splunkdtest.Leaf{CN: remote, Hosts: []string{remote}})
	corpOtherHost := issue(t, corp, splunkdtest.Leaf{CN: "idx1.example.com", Hosts: []string{"idx1.example.com"}})
	corpExpired := issue(t, corp, splunkdtest.Leaf{CN: remote, Hosts: []string{remote}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	fakeDefault := issue(t, other, splunkdtest.Leaf{CN: defaultCertCN})
	defaultNamingHost := issue(t, splunkCA, splunkdtest.Leaf{CN: defaultCertCN, Hosts: []string{"idx1.example.com"}})

	cacert := "etc/auth/cacert.pem"
	corpPEM, splunkPEM, otherPEM := string(corp.CertPEM), string(splunkCA.CertPEM), string(other.CertPEM)
	hardened := map[string]string{cacert: splunkPEM, "etc/auth/contoso/ca.pem": corpPEM,
		"etc/system/local/server.conf": "[general]\nserverName = sh1\n\n# the company's CA\n[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/contoso/ca.pem\nserverCert = $SPLUNK_HOME/etc/auth/contoso/server.pem\n"}
	tests := []struct {
		name     string
		files    map[string]string
		cert     tls.Certificate
		remote   bool   // server_uri names splunk.example.com, not this host
		scheme   string // default https
		wantErr  string // "" = the calls succeed
		wantWarn string // "" = no warning
	}{
		{name: "hardened host, loopback: sslRootCAPath", files: hardened, cert: corpLeaf},
		{name: "hardened host, remote: sslRootCAPath and host name", files: hardened, cert: corpLeaf, remote: true},
		{name: "system/local over system/default", cert: corpLeaf, remote: true, files: map[string]string{cacert: splunkPEM, "etc/auth/corp.pem": corpPEM, "etc/auth/other.pem": otherPEM,
			"etc/system/default/server.conf": "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/other.pem\n",
			"etc/system/local/server.conf":   "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/corp.pem\n"}},
		{name: "system/default alone", cert: corpLeaf, remote: true, files: map[string]string{cacert: splunkPEM, "etc/auth/corp.pem": corpPEM,
			"etc/system/default/server.conf": "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/corp.pem\n"}},
		{name: "an app's server.conf over system/default", cert: corpLeaf, remote: true, files: map[string]string{cacert: splunkPEM, "etc/auth/corp.pem": corpPEM, "etc/auth/other.pem": otherPEM,
			"etc/system/default/server.conf":         "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/other.pem\n",
			"etc/apps/org_all_tls/local/server.conf": "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/corp.pem\n"}},
		{name: "system/local over an app's", cert: corpLeaf, remote: true, wantErr: "other.pem", files: map[string]string{cacert: splunkPEM, "etc/auth/corp.pem": corpPEM, "etc/auth/other.pem": otherPEM,
			"etc/system/local/server.conf":           "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/other.pem\n",
			"etc/apps/org_all_tls/local/server.conf": "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/corp.pem\n"}},
		{name: "an empty sslRootCAPath in local unsets default's: cacert.pem", cert: corpLeaf, remote: true, wantErr: "cacert.pem", files: map[string]string{cacert: splunkPEM, "etc/auth/corp.pem": corpPEM,
			"etc/system/default/server.conf": "[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/corp.pem\n",
			"etc/system/local/server.conf":   "[sslConfig]\nsslRootCAPath =\n"}},
		{name: "older caCertFile in caPath", cert: corpLeaf, remote: true, files: map[string]string{cacert: splunkPEM, "etc/auth/corp/ca.pem": corpPEM,
			"etc/system/local/server.conf": "[sslConfig]\ncaPath = $SPLUNK_HOME/etc/auth/corp\ncaCertFile = ca.pem\n"}},
		{name: "Splunk's default certificate, loopback", files: map[string]string{cacert: splunkPEM}, cert: defaultLeaf},
		{name: "Splunk's default certificate, remote", files: map[string]string{cacert: splunkPEM}, cert: defaultLeaf, remote: true, wantWarn: "Splunk's default certificate"},
		{name: "loopback, another CA: warn and go on", files: map[string]string{cacert: otherPEM}, cert: defaultLeaf, wantWarn: "could not be verified"},
		{name: "loopback, no CA file: warn and go on", cert: defaultLeaf, wantWarn: "cacert.pem"},
		{name: "loopback, expired: warn and go on", files: hardened, cert: corpExpired, wantWarn: "expired"},
		{name: "loopback, plain http", scheme: "http"},
		{name: "remote, another CA", files: map[string]string{cacert: otherPEM}, cert: defaultLeaf, remote: true, wantErr: "is not signed by the CA in"},
		{name: "remote, expired", files: hardened, cert: corpExpired, remote: true, wantErr: "expired"},
		{name: "remote, no CA file", cert: defaultLeaf, remote: true, wantErr: "cannot be read"},
		{name: "remote, a certificate for another host", files: hardened, cert: corpOtherHost, remote: true, wantErr: "does not name " + remote},
		{name: "remote, the default name from an unknown CA", files: map[string]string{cacert: splunkPEM}, cert: fakeDefault, remote: true, wantErr: "is not signed"},
		{name: "remote, the default name with a host name: checked", files: map[string]string{cacert: splunkPEM}, cert: defaultNamingHost, remote: true, wantErr: "does not name " + remote},
		{name: "remote over http", files: hardened, remote: true, scheme: "http", wantErr: "must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := splunkdtest.Options{}
			if tt.scheme != "http" {
				opt.Certificate = &tt.cert
			}
			sp := splunkdtest.NewWith(testKey, "TA-defender-alerts", opt)
			t.Cleanup(sp.Close)
			sp.SetPassword("r", "t1/client_secret", "pw")
			addr := sp.Listener.Addr().String()
			if tt.scheme == "http" { // splunkd with enableSplunkdSSL = false
				plain := httptest.NewServer(sp)
				t.Cleanup(plain.Close)
				addr = plain.Listener.Addr().String()
			}
			host := "127.0.0.1"
			if tt.remote {
				host = remote
			}
			_, port, _ := net.SplitHostPort(addr)
			scheme := tt.scheme
			if scheme == "" {
				scheme = "https"
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			c, err := New(scheme+"://"+net.JoinHostPort(host, port), secret.String(testKey), "TA-defender-alerts", splunkHome(t, tt.files), log)
			if err == nil {
				// splunk.example.com is this test's splunkd: resolve it here.
				c.hc.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}
				for i := 0; i < 3 && err == nil; i++ { // three connections: three handshakes, one warning
					var pw secret.String
					var ok bool
					pw, ok, err = c.Password(context.Background(), "r", "t1/client_secret")
					if err == nil && (!ok || pw.Reveal() != "pw") {
						t.Fatalf("password %q, %v", pw.Reveal(), ok)
					}
					c.hc.CloseIdleConnections()
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
			warns := strings.Count(logs.String(), "level=WARN")
			switch {
			case tt.wantWarn == "" && warns != 0:
				t.Errorf("unexpected warning:\n%s", logs.String())
			case tt.wantWarn != "" && (warns != 1 || !strings.Contains(logs.String(), tt.wantWarn)):
				t.Errorf("want one warning saying %q, got %d:\n%s", tt.wantWarn, warns, logs.String())
			}
			if strings.Contains(logs.String(), testKey) || (err != nil && strings.Contains(err.Error(), testKey)) {
				t.Error("the session key reached a log or an error")
			}
		})
	}
}

// A wrong session key is reported, without the key.
func TestWrongSessionKey(t *testing.T) {
	sp := splunkdtest.New(testKey, "TA-defender-alerts")
	defer sp.Close()
	home := t.TempDir()
	if err := sp.InstallCACert(home); err != nil {
		t.Fatal(err)
	}
	c, err := New(sp.URL, secret.String("s3cr3t-wrong-key"), "TA-defender-alerts", home, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Password(context.Background(), "r", "t1/client_secret")
	if err == nil || strings.Contains(err.Error(), "s3cr3t-wrong-key") || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestParseConf(t *testing.T) {
	conf := "\xef\xbb\xbfkey0 = top\n[sslConfig]\n  # a comment\nsslRootCAPath = /a/b # not a comment\nmulti = one \\\ntwo\n[ other ]\nx=1\nno equals sign\n"
	got := parseConf([]byte(conf))
	want := map[string]map[string]string{"default": {"key0": "top"}, "sslConfig": {"sslRootCAPath": "/a/b # not a comment", "multi": "one \ntwo"}, "other": {"x": "1"}}
	for st, kv := range want {
		for k, v := range kv {
			if got[st][k] != v {
				t.Errorf("[%s] %s = %q, want %q", st, k, got[st][k], v)
			}
		}
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add([]byte("[sslConfig]\nsslRootCAPath = $SPLUNK_HOME/etc/auth/ca.pem\n"))
	f.Add([]byte("a = b \\\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for st, kv := range parseConf(b) {
			for k := range kv {
				if k != strings.TrimSpace(k) || st != strings.TrimSpace(st) {
					t.Fatalf("untrimmed key %q or stanza %q", k, st)
				}
			}
		}
	})
}

// splunkd's message text reaches logs and terminals: it is one short line without control or
// formatting characters, whatever splunkd (or something posing as it) sends.
func TestErrorTextIsCleanAndShort(t *testing.T) {
	long := strings.Repeat("Insufficient permissions ", 400)
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"escape sequences and a forged line", 403, `{"messages":[{"type":"ERROR","text":"denied \u001b[2J\u001b]0;pwned\u0007now\u009b31m\nERROR forged line"}]}`,
			"denied [2J]0;pwnednow31m ERROR forged line"},
		{"bidirectional override", 403, `{"messages":[{"type":"ERROR","text":"no entity \u202etxet\u202c here\u200b"}]}`, "no entity txet here"},
		{"long text", 500, `{"messages":[{"type":"ERROR","text":"` + long + `"}]}`, "Insufficient permissions Insufficient"},
		{"invalid UTF-8", 400, "{\"messages\":[{\"type\":\"ERROR\",\"text\":\"bad \xff\xfe name\"}]}", "bad \uFFFD\uFFFD name"}, // json.Unmarshal replaces each bad byte
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := New(srv.URL, secret.String(testKey), "TA-defender-alerts", t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Password(context.Background(), "r", "t1/client_secret")
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not hold %q", msg, tt.want)
			}
			if n := len([]rune(msg)); n > 300 {
				t.Errorf("the error has %d characters: %.100s…", n, msg)
			}
			for _, r := range msg {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Errorf("control or format character %U in %q", r, msg)
				}
			}
			if !utf8.ValidString(msg) {
				t.Errorf("invalid UTF-8 in %q", msg)
			}
		})
	}
}
