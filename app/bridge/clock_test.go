package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/secret"
)

// drainWith runs one drain with the pump's clock taken from the Defender client (as the
// program wires it) or, with hostClock, from the host alone (as before issue 9).
func drainWith(t *testing.T, api *defendertest.Server, h *hectest.Server, rd *defender.Client, dir string, hostClock bool) (Stats, *checkpoint.State) {
	t.Helper()
	hc, err := hec.New(hec.Config{URLs: []string{h.URL}, Token: secret.String(hecToken), BatchBytes: 64 << 10,
		BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := testConfig(store, dir)
	if !hostClock {
		cfg.Clock = rd.APITime
	}
	p := New(cfg, DefenderSource(rd), HECSink(hc, 20*time.Millisecond))
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p.Stats(), st
}

// Issue 9, item 2: with the host's clock 15 minutes (or an hour) ahead, a window ending at the
// host's "now" lies in the API's future, and the next window starts after alerts that are
// updated in between (reproduced: 100 of 120 new alerts lost); with the host behind, new
// alerts wait until the host catches up. Windows that follow Microsoft's clock lose nothing
// and delay nothing.
func TestWindowsFollowMicrosoftsClock(t *testing.T) {
	for _, off := range []time.Duration{15 * time.Minute, -15 * time.Minute, time.Hour, -time.Hour} {
		t.Run(fmt.Sprint("host off by ", off), func(t *testing.T) {
			apiNow := func() time.Time { return time.Now().Add(-off) }
			api := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV, Now: apiNow})
			t.Cleanup(api.Close)
			start := apiNow()
			api.AddAlerts(500, func(i int) time.Time { return start.Add(-23 * time.Hour).Add(time.Duration(i) * time.Minute) })
			h := hectest.New(hectest.Options{Token: hecToken, Key: key})
			t.Cleanup(h.Close)
			rd, err := defender.New(defender.Config{TenantID: tenant, ClientID: client, ClientSecret: secretV, APIURL: api.URL, LoginURL: api.URL})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			st1, cp := drainWith(t, api, h, rd, dir, false)
			if st1.Confirmed != 500 {
				t.Fatalf("first run confirmed %d, want 500", st1.Confirmed)
			}
			if d := cp.Watermark.Sub(apiNow()); d > 2*time.Second {
				t.Errorf("the watermark lies %v in the API's future", d)
			}
			// 120 alerts updated in the API's present (within the Date header's one-second grain), then the next poll.
			time.Sleep(1100 * time.Millisecond)
			api.AddAlerts(120, func(int) time.Time { return apiNow().Add(-2 * time.Second) })
			st2, _ := drainWith(t, api, h, rd, dir, false)
			if st2.Confirmed != 120 {
				t.Errorf("the next poll delivered %d of 120 new alerts", st2.Confirmed)
			}
			if lost := h.Stats(); len(currentLost(api, h)) != 0 || lost.Duplicates != 0 {
				t.Errorf("lost %d, duplicates %d", len(currentLost(api, h)), lost.Duplicates)
			}
		})
	}
}

func currentLost(api *defendertest.Server, h *hectest.Server) []string {
	var out []string
	for id, v := range api.Current(time.Now().Add(2 * time.Hour)) {
		if h.Count(id+"@"+defendertest.FormatTime(v.LastUpdate)) == 0 {
			out = append(out, id)
		}
	}
	return out
}

// A clock that steps back never moves the checkpoint back.
func TestClockSteppingBackKeepsTheWatermark(t *testing.T) {
	r := newRig(t, false, 200)
	hc, err := hec.New(hec.Config{URLs: []string{r.hec.URL}, Token: secret.String(hecToken)})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	store, err := checkpoint.Open(r.dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clock := time.Now().UTC()
	cfg := testConfig(store, r.dir)
	cfg.Clock = func(context.Context) (time.Time, error) { return clock, nil }
	p := New(cfg, DefenderSource(r.reads), HECSink(hc, 20*time.Millisecond))
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, _ := store.Load()
	clock = clock.Add(-30 * time.Minute)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, _ := store.Load()
	if second.Watermark.Before(first.Watermark) {
		t.Errorf("the watermark moved back from %v to %v", first.Watermark, second.Watermark)
	}
	if d := r.hec.Stats().Duplicates; d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// A clock difference of more than a minute is a warning that names both times, once while it
// stays the same.
func TestClockDifferenceIsLoggedOnce(t *testing.T) {
	var buf syncBuffer
	host := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := New(Config{Log: slog.New(slog.NewTextHandler(&buf, nil)), Now: func() time.Time { return host },
		Clock: func(context.Context) (time.Time, error) { return host.Add(-90 * time.Second), nil }}, nil, (&scripted{}).open)
	for range 3 {
		if _, err := p.sourceNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if n := strings.Count(out, "differs from Microsoft's"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "host_time=2026-12-01T12:00:00Z") || !strings.Contains(out, "microsoft_time=2026-12-01T11:58:30Z") {
		t.Errorf("the warning does not name both times:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
