package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/secret"
)

const (
	tenant   = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	client   = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
	secretV  = "Zx8Q~s3cr3t.Value_for-tests"
	hecToken = "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
)

// key names an indexed event by alert version, for the HEC stand-in's duplicate count.
func key(raw []byte) string {
	var a struct{ ID, LastUpdateTime string }
	_ = json.Unmarshal(raw, &a)
	return a.ID + "@" + a.LastUpdateTime
}

type rig struct {
	t     *testing.T
	api   *defendertest.Server
	hec   *hectest.Server
	dir   string
	reads *defender.Client
}

func newRig(t *testing.T, ack bool, n int) *rig {
	t.Helper()
	api := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV})
	t.Cleanup(api.Close)
	now := time.Now()
	api.AddAlerts(n, func(i int) time.Time {
		return now.Add(-23 * time.Hour).Add(time.Duration(i) * 22 * time.Hour / time.Duration(max(n, 1)))
	})
	h := hectest.New(hectest.Options{Token: hecToken, Ack: ack, Key: key})
	t.Cleanup(h.Close)
	rd, err := defender.New(defender.Config{TenantID: tenant, ClientID: client, ClientSecret: secretV, APIURL: api.URL, LoginURL: api.URL,
		PageSize: 1000, BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, api: api, hec: h, dir: t.TempDir(), reads: rd}
}

// drain runs one pump drain with a fresh HEC client, as one run of the program would.
func (r *rig) drain(ctx context.Context, mod func(*hec.Config)) (Stats, error) {
	r.t.Helper()
	cfg := hec.Config{URLs: []string{r.hec.URL}, Token: secret.String(hecToken), BatchBytes: 64 << 10,
		AckInterval: 10 * time.Millisecond, AckTimeout: time.Second, BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, SetAside: 50 * time.Millisecond,
		MaxInFlight: 4}
	if mod != nil {
		mod(&cfg)
	}
	hc, err := hec.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	defer hc.Close()
	store, err := checkpoint.Open(r.dir, "tenant1")
	if err != nil {
		return Stats{}, err
	}
	defer store.Close()
	p := New(testConfig(store, r.dir), DefenderSource(r.reads), HECSink(hc, 50*time.Millisecond))
	err = p.Drain(ctx)
	return p.Stats(), err
}

// testConfig is how these tests run a pump: a first run reads 24 hours back, each window
// re-reads 10 minutes, windows end on the Defender API's tick, as the program's do.
func testConfig(store *checkpoint.Store, dir string) Config {
	return Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: 24 * time.Hour,
		Overlap: 10 * time.Minute, TimeResolution: defender.TimeResolution, Grace: time.Second, DeadLetter: DeadLetterPath(dir, "tenant1")}
}

// lost lists current alert versions never indexed.
func (r *rig) lost() []string {
	var out []string
	for id, v := range r.api.Current(time.Now()) {
		if r.hec.Count(id+"@"+defendertest.FormatTime(v.LastUpdate)) == 0 {
			out = append(out, id)
		}
	}
	return out
}

func TestDrainDeliversOnceAndCommits(t *testing.T) {
	r := newRig(t, true, 5000)
	st, err := r.drain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if lost := r.lost(); len(lost) > 0 || r.hec.Stats().Duplicates != 0 || st.Confirmed != 5000 {
		t.Fatalf("lost %d, duplicates %d, confirmed %d", len(lost), r.hec.Stats().Duplicates, st.Confirmed)
	}
	// A second run finds nothing new and sends nothing twice, though it re-reads the overlap.
	r.api.Update(20)
	st2, err := r.drain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if hs := r.hec.Stats(); hs.Duplicates != 0 || len(r.lost()) != 0 || st2.Confirmed != 20 {
		t.Errorf("second run: duplicates %d, lost %d, confirmed %d (want 0, 0, 20)", hs.Duplicates, len(r.lost()), st2.Confirmed)
	}
	s, _ := checkpoint.Open(r.dir, "tenant1")
	defer s.Close()
	cp, err := s.Load()
	if err != nil || cp.Window != nil || time.Since(cp.Watermark) > time.Minute {
		t.Errorf("checkpoint after the run: %+v, %v", cp, err)
	}
}

func TestHECDownThenBackLosesNothing(t *testing.T) {
	r := newRig(t, true, 6000)
	r.hec.SetDown(true)
	// The live heap (after a GC) while HEC is down: what the pump holds, not garbage.
	var peak atomic.Uint64
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		var ms runtime.MemStats
		for i := 0; i < 10; i++ {
			time.Sleep(150 * time.Millisecond)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
		r.hec.SetDown(false)
	}()
	st, err := r.drain(context.Background(), func(c *hec.Config) { c.MaxInFlight = 2 })
	if err != nil {
		t.Fatal(err)
	}
	if lost := r.lost(); len(lost) > 0 || st.Confirmed != 6000 {
		t.Fatalf("lost %d, confirmed %d", len(lost), st.Confirmed)
	}
	// While HEC was down, reading paused: memory held at most a few batches, not the backlog
	// (6,000 alerts are about 20 MB).
	grew := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("heap grew by %.1f MB at most while HEC was down", float64(grew)/1e6)
	if grew > 12<<20 {
		t.Errorf("heap grew by %d MB: alerts piled up instead of reading pausing", grew>>20)
	}
}

func TestLostAcksAreResent(t *testing.T) {
	r := newRig(t, true, 3000)
	r.hec.SetFailures(0, 0, 0, 0.2)
	// With a give-up time, as in run --once: without one, a batch whose ack is lost four times
	// in a row (about one in 600) fails, for the daemon to run again.
	st, err := r.drain(context.Background(), func(c *hec.Config) { c.AckTimeout = 200 * time.Millisecond; c.GiveUpAfter = time.Minute })
	if err != nil {
		t.Fatal(err)
	}
	hs := r.hec.Stats()
	t.Logf("acks lost %d, resent %d, duplicates %d", hs.AcksLost, st.Resent, hs.Duplicates)
	if len(r.lost()) > 0 || hs.AcksLost == 0 || st.Resent == 0 || hs.Duplicates > st.Resent {
		t.Errorf("lost %d, acks lost %d, resent %d, duplicates %d", len(r.lost()), hs.AcksLost, st.Resent, hs.Duplicates)
	}
}

func TestRejectedGoesToDeadLetter(t *testing.T) {
	r := newRig(t, false, 500)
	badID := defendertest.AlertID(77)
	r.hec.Reject(func(ev []byte) bool { return strings.Contains(string(ev), badID) })
	// One batch in flight: what follows the bad alert is sent after its refusal, and so shows
	// it a rare bad one within this drain.
	st, err := r.drain(context.Background(), func(c *hec.Config) { c.MaxInFlight = 1 })
	if err != nil {
		t.Fatal(err)
	}
	if st.Rejected != 1 || st.Confirmed != 499 || r.hec.Stats().Distinct != 499 {
		t.Fatalf("rejected %d, confirmed %d, indexed %d", st.Rejected, st.Confirmed, r.hec.Stats().Distinct)
	}
	b, err := os.ReadFile(DeadLetterPath(r.dir, "tenant1"))
	if err != nil {
		t.Fatal(err)
	}
	var line struct {
		ID       string `json:"alert_id"`
		Code     int    `json:"hec_code"`
		Envelope struct {
			Event json.RawMessage `json:"event"`
		} `json:"envelope"`
	}
	if err := json.Unmarshal(b, &line); err != nil || line.ID != badID || line.Code != 6 || !strings.Contains(string(line.Envelope.Event), `"evidence"`) {
		t.Errorf("dead-letter line %s: %v", b, err)
	}
	if fi, _ := os.Stat(DeadLetterPath(r.dir, "tenant1")); fi.Mode().Perm() != 0o600 {
		t.Errorf("dead-letter mode %v", fi.Mode().Perm())
	}
}

func TestCorruptCheckpointStops(t *testing.T) {
	r := newRig(t, false, 10)
	path := r.dir + "/tenant1.json"
	if err := os.WriteFile(path, []byte(`{"version":1,"watermark":`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := r.drain(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"version":1,"watermark":` {
		t.Error("the corrupt checkpoint was changed")
	}
	if r.hec.Stats().Requests != 0 {
		t.Error("something was sent despite the corrupt checkpoint")
	}
}

// Delivery dies part-way (the token is disabled mid-run); the next run, with the token back,
// finishes the window from its checkpoint and re-sends at most what was in flight.
func TestResumeAfterFailure(t *testing.T) {
	r := newRig(t, false, 8000)
	go func() {
		for r.hec.Stats().Indexed < 3000 {
			time.Sleep(time.Millisecond)
		}
		r.hec.SetTokenDisabled(true)
	}()
	_, err := r.drain(context.Background(), func(c *hec.Config) { c.MaxInFlight = 2 })
	var he *hec.Error
	if err == nil || !errors.As(errors.Unwrap(err), &he) || he.Retryable() {
		t.Fatalf("err = %v, want the disabled-token failure", err)
	}
	s, _ := checkpoint.Open(r.dir, "tenant1")
	cp, _ := s.Load()
	s.Close()
	if cp == nil || cp.Window == nil {
		t.Fatalf("no part-way window in the checkpoint: %+v", cp)
	}
	indexedBefore := r.hec.Stats().Indexed
	r.hec.SetTokenDisabled(false)
	if _, err := r.drain(context.Background(), func(c *hec.Config) { c.MaxInFlight = 2 }); err != nil {
		t.Fatal(err)
	}
	hs := r.hec.Stats()
	t.Logf("indexed %d before the failure; duplicates after the resume %d", indexedBefore, hs.Duplicates)
	if len(r.lost()) > 0 {
		t.Fatalf("%d alerts lost", len(r.lost()))
	}
	// At most the batches in flight (2 × 64 KiB ≈ 40 alerts) come twice.
	if hs.Duplicates > 60 {
		t.Errorf("%d duplicates after the resume: more than the batches in flight", hs.Duplicates)
	}
}
