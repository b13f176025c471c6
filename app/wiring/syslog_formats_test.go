package wiring

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
	"ta-defender-alerts/app/splunkdtest"
	"ta-defender-alerts/app/syslog"
)

// LEEF and JSON, LF framing and TLS go through the real pump and the syslog sink to a
// receiver that parses them strictly (go-syslog for the framing and RFC 5424, siemtest for CEF
// and LEEF): each detection (or alert, for json) arrives once, and the checkpoint moves past
// them all.
func TestSyslogFormatsAndTransports(t *testing.T) {
	ca, err := splunkdtest.NewCA("Test Syslog CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(splunkdtest.Leaf{CN: "syslog.test", Hosts: []string{"syslog.test"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, format string
		lf, tls      bool
	}{
		{"leef, octet counting", "leef", false, false},
		{"json, LF", "json", true, false},
		{"cef, LF", "cef", true, false},
		{"cef, TLS", "cef", false, true},
		{"leef, TLS and LF", "leef", true, true},
		{"json, TLS", "json", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tc *tls.Config
			scheme := "tcp://"
			if tt.tls {
				tc, scheme = &tls.Config{Certificates: []tls.Certificate{cert}}, "tls://"
			}
			r := newReceiverWith(t, tt.lf, tc)
			cfg := syslogTenant(t, 40, scheme+r.ln.Addr().String(), tt.format)
			if tt.lf {
				cfg.Syslog.Framing = syslog.LF
			}
			if tt.tls {
				cfg.Syslog.CAFile, cfg.Syslog.ServerName = caFile, "syslog.test"
			}
			want := wantFullIDs(t, cfg) // FullId -> alert id
			c := drainTo(t, cfg)
			checkpointDone(t, c)
			if s := c.Pump.Stats(); s.Confirmed != 40 || s.Rejected != 0 {
				t.Errorf("confirmed %d, dead-lettered %d; want 40, 0", s.Confirmed, s.Rejected)
			}
			got := map[string]int{} // FullIds, or alert ids for json
			for _, m := range r.messages() {
				key, msgID := "", "detection"
				switch tt.format {
				case "cef":
					e, err := siemtest.ParseCEF(*m.Message)
					if err != nil {
						t.Fatalf("strict CEF parser: %v\n%.300s", err, *m.Message)
					}
					key = e.Ext["cs3"]
				case "leef":
					e, err := siemtest.ParseLEEF(*m.Message)
					if err != nil {
						t.Fatalf("strict LEEF parser: %v\n%.300s", err, *m.Message)
					}
					key = e.Attrs["FullId"]
				case "json":
					var a struct {
						ID string `json:"id"`
					}
					if err := json.Unmarshal([]byte(*m.Message), &a); err != nil || a.ID == "" {
						t.Fatalf("not an alert's JSON (%v): %.300s", err, *m.Message)
					}
					key, msgID = a.ID, "alert"
				}
				if m.MsgID == nil || *m.MsgID != msgID {
					t.Errorf("MSGID %v, want %s", m.MsgID, msgID)
				}
				got[key]++
			}
			wantKeys := map[string]bool{}
			for fullID, alert := range want {
				if tt.format == "json" {
					wantKeys[alert] = true
				} else {
					wantKeys[fullID] = true
				}
			}
			for k := range wantKeys {
				if got[k] != 1 {
					t.Errorf("%s arrived %d times, want once", k, got[k])
				}
			}
			if len(got) != len(wantKeys) || len(wantKeys) < 40 {
				t.Errorf("got %d distinct records, want %d (of 40 alerts)", len(got), len(wantKeys))
			}
		})
	}
}

// The header settings reach the CEF and LEEF lines.
func TestSyslogHeaderReachesTheLine(t *testing.T) {
	ds, err := siem.Build([]byte(`{"id":"da1_1","lastUpdateTime":"2026-11-30T10:00:00Z","alertCreationTime":"2026-11-30T09:00:00Z","title":"T","severity":"High"}`))
	if err != nil {
		t.Fatal(err)
	}
	for format, prefix := range map[string]string{"cef": "CEF:0|Contoso|Prod|9.9|", "leef": "LEEF:2.0|Contoso|Prod|9.9|"} {
		k, err := newSyslogSink(syslog.Options{URL: "tcp://127.0.0.1:9", Linger: time.Hour}, format, [3]string{"Contoso", "Prod", "9.9"})
		if err != nil {
			t.Fatal(err)
		}
		if line := string(k.enc(nil, &ds[0])); !strings.HasPrefix(line, prefix) {
			t.Errorf("%s line %q, want it to start %q", format, line, prefix)
		}
		k.w.Close(context.Background())
	}
}
