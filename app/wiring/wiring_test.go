package wiring

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/modinput"
)

const (
	tenant   = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	client   = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
	secretV  = "Zx8Q~s3cr3t.Value_for-tests"
	hecToken = "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tenantWith is a stand-in tenant holding n alerts of the last hour, and a configuration that
// reads it.
func tenantWith(t *testing.T, n int, output string) *config.Config {
	t.Helper()
	cfg, _ := tenantAPI(t, n, output)
	return cfg
}

func tenantAPI(t *testing.T, n int, output string) (*config.Config, *defendertest.Server) {
	t.Helper()
	api := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV})
	t.Cleanup(api.Close)
	now := time.Now()
	api.AddAlerts(n, func(i int) time.Time { return now.Add(-time.Hour).Add(time.Duration(i) * time.Second) })
	return &config.Config{Output: output, Input: "tenant1", StateDir: t.TempDir(), Start: 2 * time.Hour, Overlap: time.Minute,
		Linger:   20 * time.Millisecond,
		Defender: defender.Config{TenantID: tenant, ClientID: client, ClientSecret: secretV, APIURL: api.URL, LoginURL: api.URL, PageSize: 100},
		HEC:      hec.Config{Sourcetype: "ms:defender:atp:alerts", Source: "defender_alerts", Index: "security"}}, api
}

// With output stdout, every alert goes to splunkd's stream, under the input's stanza and with
// its sourcetype and index, and the checkpoint moves past them.
func TestStdoutOutput(t *testing.T) {
	cfg := tenantWith(t, 250, "stdout")
	var out bytes.Buffer
	events := modinput.NewEventWriter(&out)
	c, err := New(cfg, quiet, &Stdout{Events: events, Stanza: "defender_alerts://tenant1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pump.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := c.Store.Load()
	c.Close()
	if err != nil || st == nil || st.Window != nil || time.Since(st.Watermark) > time.Minute {
		t.Errorf("checkpoint %+v (%v), want the window done", st, err)
	}
	events.Close()
	s := out.String()
	if n := strings.Count(s, `<event stanza="defender_alerts://tenant1" unbroken="1">`); n != 250 || c.HEC != nil {
		t.Errorf("%d events on the stream, want 250 (HEC client: %v)", n, c.HEC)
	}
	if strings.Count(s, "<sourcetype>ms:defender:atp:alerts</sourcetype><index>security</index>") != 250 {
		t.Errorf("events without their sourcetype and index: %.300s", s)
	}
	if got := c.Pump.Stats(); got.Confirmed != 250 || got.Commits == 0 {
		t.Errorf("confirmed %d in %d commits, want 250", got.Confirmed, got.Commits)
	}
}

// With output hec, every alert goes to HEC.
func TestHECOutput(t *testing.T) {
	cfg := tenantWith(t, 250, "hec")
	cfg.HEC.AckInterval = 10 * time.Millisecond
	h, c := drainToHEC(t, cfg, true)
	if hs := h.Stats(); hs.Distinct != 250 || c.HEC == nil || c.HEC.Stats().Records != 250 {
		t.Errorf("HEC indexed %d alerts, want 250", hs.Distinct)
	}
}

// A setting a client refuses is a *SettingError, which cfg.Explain names as the caller's
// settings do; a checkpoint another process holds is not; and output stdout needs a stream.
func TestNewErrors(t *testing.T) {
	cfg := tenantWith(t, 0, "hec")
	cfg.HEC.URLs, cfg.HEC.Token = []string{"htp://splunk.example.com:8088"}, hecToken
	_, err := New(cfg, quiet, nil)
	var se *SettingError
	if !errors.As(err, &se) || !strings.HasPrefix(cfg.Explain(err).Error(), "DEFENDER_HEC_URL: ") {
		t.Errorf("a bad HEC URL: %v, want a SettingError naming DEFENDER_HEC_URL", err)
	}

	cfg = tenantWith(t, 0, "stdout")
	if _, err := New(cfg, quiet, nil); err == nil || !strings.Contains(err.Error(), "output stdout") {
		t.Errorf("output stdout without a stream: %v", err)
	}

	held, err := checkpoint.Open(cfg.StateDir, cfg.Input)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = New(cfg, quiet, &Stdout{Events: modinput.NewEventWriter(io.Discard)})
	t.Logf("a checkpoint in use: %v", err)
	if err == nil || errors.As(err, &se) {
		t.Errorf("a checkpoint in use: %v, want an error that is not a SettingError", err)
	}
}

// HEC takes each event whole, so it gets the API's bytes as they came, pretty-printed ones
// too: only the stdout path, which splunkd line-breaks, compacts them.
func TestHECKeepsTheAPIsBytes(t *testing.T) {
	cfg, api := tenantAPI(t, 30, "hec")
	api.Pretty(true)
	h, _ := drainToHEC(t, cfg, false)
	evs := h.Events()
	if len(evs) != 30 {
		t.Fatalf("HEC got %d events, want 30", len(evs))
	}
	for _, e := range evs {
		if !bytes.HasPrefix(e.Raw, []byte("{\n            \"id\": ")) {
			t.Fatalf("HEC got %.120q, not the API's pretty-printed bytes", e.Raw)
		}
	}
}

// drainToHEC drains cfg's tenant once into a new HEC stand-in (acks on or off) and returns
// the stand-in and the collector (closed when the test ends).
func drainToHEC(t *testing.T, cfg *config.Config, ack bool) (*hectest.Server, *Collector) {
	t.Helper()
	h := hectest.New(hectest.Options{Token: hecToken, Ack: ack})
	t.Cleanup(h.Close)
	cfg.HEC.URLs, cfg.HEC.Token = []string{h.URL}, hecToken
	c, err := New(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Pump.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h, c
}
