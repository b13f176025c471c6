package config

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func setEnv(t *testing.T, kv map[string]string) {
	t.Helper()
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range kv {
		t.Setenv(k, v)
	}
}

func good() map[string]string {
	return map[string]string{
		"DEFENDER_TENANT_ID":     "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c",
		"DEFENDER_CLIENT_ID":     "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		"DEFENDER_CLIENT_SECRET": "sup3r~secret",
		"DEFENDER_HEC_URL":       "https://splunk.example.com:8088, https://idx2.example.com:8088",
		"DEFENDER_HEC_TOKEN":     "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8",
	}
}

func TestDefaults(t *testing.T) {
	setEnv(t, good())
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Start != 24*time.Hour || c.Overlap != 10*time.Minute || c.Interval != time.Minute || c.StateDir != "./state" ||
		c.HEC.Sourcetype != "ms:defender:atp:alerts" || c.HEC.Ack != "auto" || len(c.HEC.URLs) != 2 ||
		c.Input != "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c" || c.LogFormat != "text" || c.HEC.NoGzip {
		t.Errorf("defaults: %+v", c)
	}
}

// DEFENDER_HEC_GZIP=false sends bodies uncompressed; true (the default) gzips them.
func TestHECGzipSetting(t *testing.T) {
	for _, tt := range []struct {
		give   string
		noGzip bool
	}{{"true", false}, {"false", true}, {"0", true}, {"1", false}} {
		env := good()
		env["DEFENDER_HEC_GZIP"] = tt.give
		setEnv(t, env)
		c, err := FromEnv()
		if err != nil || c.HEC.NoGzip != tt.noGzip {
			t.Errorf("DEFENDER_HEC_GZIP=%s: NoGzip = %v (%v), want %v", tt.give, c != nil && c.HEC.NoGzip, err, tt.noGzip)
		}
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		set     map[string]string
		unset   []string
		wantVar string
		wantMsg string
	}{
		{"tenant missing", nil, []string{"DEFENDER_TENANT_ID"}, "DEFENDER_TENANT_ID", "is required"},
		{"bad client", map[string]string{"DEFENDER_CLIENT_ID": "app"}, nil, "DEFENDER_CLIENT_ID", "not a GUID"},
		{"no credential", nil, []string{"DEFENDER_CLIENT_SECRET"}, "DEFENDER_CLIENT_SECRET", "set exactly one"},
		{"secret twice", map[string]string{"DEFENDER_CLIENT_SECRET_FILE": secretFile}, nil, "DEFENDER_CLIENT_SECRET", "both set"},
		{"secret file missing", map[string]string{"DEFENDER_CLIENT_SECRET_FILE": filepath.Join(dir, "nope")}, []string{"DEFENDER_CLIENT_SECRET"}, "DEFENDER_CLIENT_SECRET_FILE", "cannot be read"},
		{"cert file missing", map[string]string{"DEFENDER_CERT_FILE": filepath.Join(dir, "nope.pem")}, []string{"DEFENDER_CLIENT_SECRET"}, "DEFENDER_CERT_FILE", "cannot be read"},
		{"bad cloud", map[string]string{"DEFENDER_CLOUD": "china"}, nil, "DEFENDER_CLOUD", "commercial, dod, gcc, gcc-high"},
		{"bad region", map[string]string{"DEFENDER_REGION": "xx"}, nil, "DEFENDER_REGION", "not a documented region"},
		{"http api", map[string]string{"DEFENDER_API_URL": "http://api.example.com"}, nil, "DEFENDER_API_URL", "https"},
		{"bad start", map[string]string{"DEFENDER_START": "yesterday"}, nil, "DEFENDER_START", "not a duration"},
		{"start too long", map[string]string{"DEFENDER_START": "200000d"}, nil, "DEFENDER_START", `"200000d" is longer than the longest duration accepted, 106751d`},
		{"zero start", map[string]string{"DEFENDER_START": "0s"}, nil, "DEFENDER_START", "more than 0"},
		{"bad interval", map[string]string{"DEFENDER_INTERVAL": "10ms"}, nil, "DEFENDER_INTERVAL", "at least 1s"},
		{"hec missing", nil, []string{"DEFENDER_HEC_URL"}, "DEFENDER_HEC_URL", "is required"},
		{"hec bad url", map[string]string{"DEFENDER_HEC_URL": "htp://x"}, nil, "DEFENDER_HEC_URL", "not an http(s) URL"},
		{"hec token missing", nil, []string{"DEFENDER_HEC_TOKEN"}, "DEFENDER_HEC_TOKEN", "is required"},
		{"hec ack", map[string]string{"DEFENDER_HEC_ACK": "sometimes"}, nil, "DEFENDER_HEC_ACK", "auto, on or off"},
		{"hec batch", map[string]string{"DEFENDER_HEC_BATCH_BYTES": "lots"}, nil, "DEFENDER_HEC_BATCH_BYTES", `"lots" is not a number`},
		{"hec batch small", map[string]string{"DEFENDER_HEC_BATCH_BYTES": "10"}, nil, "DEFENDER_HEC_BATCH_BYTES", "at least 1024"},
		{"hec in flight", map[string]string{"DEFENDER_HEC_MAX_IN_FLIGHT": "300"}, nil, "DEFENDER_HEC_MAX_IN_FLIGHT", "between 1 and 256"},
		{"hec window", map[string]string{"DEFENDER_HEC_WINDOW": "wide"}, nil, "DEFENDER_HEC_WINDOW", "adaptive or fixed"},
		{"hec bytes in flight", map[string]string{"DEFENDER_HEC_MAX_BYTES_IN_FLIGHT": "1000"}, nil, "DEFENDER_HEC_MAX_BYTES_IN_FLIGHT", "at least 1048576"},
		{"page size", map[string]string{"DEFENDER_PAGE_SIZE": "20000"}, nil, "DEFENDER_PAGE_SIZE", "between 1 and 10000"},
		{"ca file", map[string]string{"DEFENDER_CA_FILE": filepath.Join(dir, "nope.pem")}, nil, "DEFENDER_CA_FILE", "cannot be read"},
		{"hec ca file", map[string]string{"DEFENDER_HEC_CA_FILE": filepath.Join(dir, "nope.pem")}, nil, "DEFENDER_HEC_CA_FILE", "cannot be read"},
		{"token twice", map[string]string{"DEFENDER_HEC_TOKEN_FILE": secretFile}, nil, "DEFENDER_HEC_TOKEN", "DEFENDER_HEC_TOKEN_FILE are both set"},
		{"token from nowhere", nil, []string{"DEFENDER_HEC_TOKEN"}, "DEFENDER_HEC_TOKEN", "(or DEFENDER_HEC_TOKEN_FILE)"},
		{"unknown feed", map[string]string{"DEFENDER_FEED": "endpoint-alerts,incident"}, nil, "DEFENDER_FEED", `"incident" is not a feed; the feeds are endpoint-alerts, graph-alerts`},
		{"feed twice", map[string]string{"DEFENDER_FEED": "graph-alerts, Graph-Alerts"}, nil, "DEFENDER_FEED", "names graph-alerts twice"},
		{"sourcetype for two feeds", map[string]string{"DEFENDER_FEED": "endpoint-alerts,graph-alerts", "DEFENDER_HEC_SOURCETYPE": "mine"}, nil, "DEFENDER_HEC_SOURCETYPE", "applies to an input with one feed"},
		{"graph url", map[string]string{"DEFENDER_FEED": "endpoint-alerts,graph-alerts", "DEFENDER_GRAPH_URL": "http://graph.example.com"}, nil, "DEFENDER_GRAPH_URL", "https"},
		{"graph url names itself, not the API's", map[string]string{"DEFENDER_FEED": "graph-alerts", "DEFENDER_GRAPH_URL": "ftp://graph.example.com"}, nil, "DEFENDER_GRAPH_URL", ""},
		{"excluded source misspelt", map[string]string{"DEFENDER_FEED": "graph-alerts", "DEFENDER_GRAPH_EXCLUDE_SOURCES": "microsoftDefenderForEndpoints"}, nil, "DEFENDER_GRAPH_EXCLUDE_SOURCES", "is not one of Graph's service sources"},
		{"graph setting without the graph feed", map[string]string{"DEFENDER_GRAPH_EXCLUDE_SOURCES": "microsoftDefenderForEndpoint"}, nil, "DEFENDER_GRAPH_EXCLUDE_SOURCES", "applies to the graph-alerts feed, which DEFENDER_FEED does not name"},
		{"input named like a feed's checkpoint", map[string]string{"DEFENDER_INPUT": "soc.Graph-Alerts"}, nil, "DEFENDER_INPUT", "ends in .graph-alerts"},
		{"log level", map[string]string{"DEFENDER_LOG_LEVEL": "loud"}, nil, "DEFENDER_LOG_LEVEL", "debug, info, warn or error"},
		{"log format", map[string]string{"DEFENDER_LOG_FORMAT": "xml"}, nil, "DEFENDER_LOG_FORMAT", "text or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := good()
			for k, v := range tt.set {
				env[k] = v
			}
			for _, k := range tt.unset {
				delete(env, k)
			}
			setEnv(t, env)
			_, err := FromEnv()
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != tt.wantVar || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %s %q", err, tt.wantVar, tt.wantMsg)
			}
			for _, s := range []string{"sup3r~secret", "from-file-secret", "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	sf, tf := filepath.Join(dir, "s"), filepath.Join(dir, "t")
	_ = os.WriteFile(sf, []byte("from-file-secret\n"), 0o600)
	_ = os.WriteFile(tf, []byte("tok-from-file"), 0o600)
	env := good()
	delete(env, "DEFENDER_CLIENT_SECRET")
	delete(env, "DEFENDER_HEC_TOKEN")
	env["DEFENDER_CLIENT_SECRET_FILE"], env["DEFENDER_HEC_TOKEN_FILE"] = sf, tf
	setEnv(t, env)
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Defender.ClientSecret.Reveal() != "from-file-secret" || c.HEC.Token.Reveal() != "tok-from-file" {
		t.Error("secrets not read from their files")
	}
}

func TestParseDuration(t *testing.T) {
	const longest = "106751d" // math.MaxInt64 nanoseconds is 106751 days and some hours
	tests := []struct {
		give    string
		want    time.Duration
		tooLong bool
		bad     bool
	}{
		{give: "90s", want: 90 * time.Second}, {give: "10m", want: 10 * time.Minute}, {give: "24h", want: 24 * time.Hour},
		{give: "7d", want: 7 * 24 * time.Hour}, {give: "1d12h", want: 36 * time.Hour},
		{give: longest, want: 106751 * 24 * time.Hour},
		{give: "d", bad: true}, {give: "-1d", bad: true}, {give: "5", bad: true}, {give: "-5m", bad: true},
		{give: "1.5d", bad: true}, {give: "1dx", bad: true},
		// Too long: refused as such, never wrapped into a negative or shorter duration.
		{give: "200000d", tooLong: true},
		{give: "106752d", tooLong: true},
		{give: "106751d23h59m", tooLong: true}, // the days fit, the sum does not
		{give: "99999999999999999999d", tooLong: true},
		{give: "3000000h", tooLong: true},
		{give: "9223372036855ms", tooLong: true},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.give)
		switch {
		case tt.tooLong:
			if err == nil || !strings.Contains(err.Error(), "longer than the longest duration accepted, "+longest) {
				t.Errorf("parseDuration(%q) = %v, %v; want the too-long error naming %s", tt.give, got, err, longest)
			}
		case (err != nil) != tt.bad || got != tt.want:
			t.Errorf("parseDuration(%q) = %v, %v", tt.give, got, err)
		case tt.bad && !strings.Contains(err.Error(), "is not a duration"):
			t.Errorf("parseDuration(%q): %v; want the not-a-duration error", tt.give, err)
		}
	}
}

// FuzzParseDuration holds every accepted duration equal to its value worked out in
// unbounded integers (days × 24 h + the rest as Go reads it): nothing negative, nothing
// wrapped around.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90s", "7d", "1d12h", "d", "", "200000d", "106751d23h", "+3d", "3000000h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("negative duration %v from %q", d, s)
		}
		want := new(big.Int)
		rest := strings.TrimSpace(s)
		if i := strings.IndexByte(rest, 'd'); i > 0 {
			n, ok := new(big.Int).SetString(strings.TrimPrefix(rest[:i], "+"), 10)
			if !ok {
				t.Fatalf("%q accepted as %v, but its days %q are not a number", s, d, rest[:i])
			}
			want.Mul(n, big.NewInt(int64(24*time.Hour)))
			rest = rest[i+1:]
		}
		if rest != "" {
			r, err := time.ParseDuration(rest)
			if err != nil {
				t.Fatalf("%q accepted as %v, but Go does not read %q: %v", s, d, rest, err)
			}
			want.Add(want, big.NewInt(int64(r)))
		}
		if want.Cmp(big.NewInt(int64(d))) != 0 {
			t.Fatalf("%q gave %v (%d ns), want %s ns", s, d, int64(d), want)
		}
	})
}
