package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The daemon with HEC down (503 on every request) for a while: each poll gives up after the
// give-up time and the failure is logged with HEC's error, the HEC client's retries are logged
// at most once a minute per URL, the daemon goes on, and once HEC is back every alert is
// delivered.
func TestDaemonRidesOutHECDown(t *testing.T) {
	oldGiveUp, oldRetry := daemonGiveUp, daemonRetryMin
	daemonGiveUp, daemonRetryMin = 500*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { daemonGiveUp, daemonRetryMin = oldGiveUp, oldRetry })
	w := newWorld(t, 300, true)
	w.extra = []string{"DEFENDER_HEC_BATCH_BYTES=32768"} // small batches: each one goes well within the give-up time
	w.hec.SetDown(true)
	for _, kv := range w.env()[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"run"}, nil, &log, &log) }()

	lines := func(substr string) []string {
		var out []string
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, substr) {
				out = append(out, l)
			}
		}
		return out
	}
	const failed = "collection failed; will try again"
	deadline := time.Now().Add(20 * time.Second)
	for len(lines(failed)) < 2 && time.Now().Before(deadline) {
		select {
		case code := <-exited:
			t.Fatalf("the daemon exited %d with HEC down:\n%s", code, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	fails := lines(failed)
	if len(fails) < 2 {
		t.Fatalf("%d failed polls logged in 20s with HEC down, want 2 or more (a batch must not retry forever inside one poll):\n%s", len(fails), log.String())
	}
	for _, l := range fails {
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "HTTP 503") || !strings.Contains(l, "Server is busy") {
			t.Errorf("the failure line does not give HEC's 503 at WARN: %s", l)
		}
	}
	if got := w.hec.Stats().ByStatus[503]; got < 2 {
		t.Errorf("HEC answered 503 %d times, want 2 or more", got)
	}
	if retries := lines("HEC did not take a batch"); len(retries) != 1 || !strings.Contains(retries[0], "level=WARN") ||
		!strings.Contains(retries[0], w.hec.URL) || !strings.Contains(retries[0], "HTTP 503") {
		t.Errorf("HEC retries logged %d times, want once a minute per URL, at WARN, with the URL and the 503: %q", len(retries), retries)
	}

	w.hec.SetDown(false)
	deadline = time.Now().Add(30 * time.Second)
	for w.lost() > 0 && time.Now().Before(deadline) {
		select {
		case code := <-exited:
			t.Fatalf("the daemon exited %d after HEC came back:\n%s", code, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	lost := w.lost()
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("the daemon exited %d after SIGTERM, want 0", code)
	}
	if lost > 0 {
		t.Errorf("%d of 300 alerts lost after HEC came back:\n%s", lost, log.String())
	}
	if l := lines("stopping: this needs a fix"); len(l) > 0 {
		t.Errorf("the daemon stopped for a HEC outage: %s", l[0])
	}
	t.Logf("503 answers %d, failed polls %d, HEC requests %d", w.hec.Stats().ByStatus[503], len(lines(failed)), w.hec.Stats().Requests)
}
