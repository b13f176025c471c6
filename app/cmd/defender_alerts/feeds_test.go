package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
)

// run --once with DEFENDER_FEED=endpoint-alerts,graph-alerts reads both APIs in one process:
// each feed's alerts reach HEC under its own sourcetype, each on its own checkpoint (the
// endpoint feed's keeps the input's name), every log line names its feed; and a feed that
// needs a fix (Graph refuses the app) fails alone while the other delivers and commits.
func TestTwoFeedsInOneProcess(t *testing.T) {
	// One Entra ID for both APIs: the Graph stand-in's token endpoint issues tokens for both
	// audiences, and the Alert API's stand-in takes them.
	graph := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV, Mode: defendertest.GraphMode})
	t.Cleanup(graph.Close)
	w := newWorldOpts(t, 300, true, defendertest.Options{Login: graph})
	now := time.Now()
	graph.AddAlerts(200, func(i int) time.Time { return now.Add(-2 * time.Hour).Add(time.Duration(i) * time.Second) })
	w.extra = append(w.extra, "DEFENDER_FEED=endpoint-alerts,graph-alerts", "DEFENDER_GRAPH_URL="+graph.URL, "DEFENDER_LOGIN_URL="+graph.URL)

	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run --once: %v\n%s", err, out)
	}
	bySourcetype := map[string]int{}
	for _, e := range w.hec.Events() {
		bySourcetype[e.Sourcetype]++
	}
	if bySourcetype["ms:defender:atp:alerts"] != 300 || bySourcetype["ms:defender:graph:alerts"] != 200 || len(bySourcetype) != 2 {
		t.Errorf("events by sourcetype %v, want 300 endpoint and 200 graph", bySourcetype)
	}
	for _, f := range []string{"tenant1.json", "tenant1.graph-alerts.json"} {
		if _, err := os.Stat(filepath.Join(w.state, f)); err != nil {
			t.Errorf("checkpoint %s: %v", f, err)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(l, " feed=endpoint-alerts") && !strings.Contains(l, " feed=graph-alerts") {
			t.Errorf("a line without its feed: %s", l)
		}
	}

	// Graph now refuses the app's tokens: that feed stops, needing a fix; the endpoint feed goes on.
	graph.AddAlerts(5, func(int) time.Time { return time.Now() })
	w.api.AddAlerts(7, func(int) time.Time { return time.Now() })
	before, _ := os.ReadFile(filepath.Join(w.state, "tenant1.json"))
	graph.RefuseTokens(true)
	cmd, out = w.start(t, "run", "--once")
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %d (%v), want 1 (one feed needs a fix)\n%s", code, err, out)
	}
	if !strings.Contains(out.String(), "feed=graph-alerts") || !strings.Contains(out.String(), "needs_fix=true") {
		t.Errorf("the failing feed is not named with its fix:\n%s", out)
	}
	after, _ := os.ReadFile(filepath.Join(w.state, "tenant1.json"))
	var a, b struct{ Watermark time.Time }
	_ = json.Unmarshal(before, &b)
	_ = json.Unmarshal(after, &a)
	if !a.Watermark.After(b.Watermark) || w.hec.Stats().Distinct != 300+200+7 {
		t.Errorf("the endpoint feed did not go on: watermark %v → %v, HEC holds %d versions", b.Watermark, a.Watermark, w.hec.Stats().Distinct)
	}
}

// The daemon with two feeds: one that needs a fix (Graph refuses the app's tokens) does not
// stop the other, and tries again now and then, so that once the fix is made it delivers
// without anyone restarting the process.
func TestDaemonFeedNeedingAFixTriesAgain(t *testing.T) {
	old := needsFixRetry
	needsFixRetry = 200 * time.Millisecond
	t.Cleanup(func() { needsFixRetry = old })
	graph := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV, Mode: defendertest.GraphMode})
	t.Cleanup(graph.Close)
	w := newWorldOpts(t, 50, true, defendertest.Options{Login: graph})
	graph.AddAlerts(40, func(i int) time.Time { return time.Now().Add(-time.Hour).Add(time.Duration(i) * time.Second) })
	graph.RefuseTokens(true)
	w.extra = append(w.extra, "DEFENDER_FEED=endpoint-alerts,graph-alerts", "DEFENDER_GRAPH_URL="+graph.URL, "DEFENDER_LOGIN_URL="+graph.URL)
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
	count := func(sourcetype string) int {
		n := 0
		for _, e := range w.hec.Events() {
			if e.Sourcetype == sourcetype {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for count("ms:defender:atp:alerts") < 50 || !strings.Contains(log.String(), "tries again") {
		if time.Now().After(deadline) {
			t.Fatalf("endpoint events %d; log:\n%s", count("ms:defender:atp:alerts"), log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	graph.RefuseTokens(false) // the fix
	for count("ms:defender:graph:alerts") < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("graph events %d after the fix; log:\n%s", count("ms:defender:graph:alerts"), log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("exit %d after a stop, want 0", code)
	}
}
