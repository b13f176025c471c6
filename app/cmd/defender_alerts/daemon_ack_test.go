package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log another goroutine writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The daemon, with acks that never come: it reports an error that says what to check, keeps
// running, and commits nothing it was not acknowledged; with acks back, nothing is missing.
func TestDaemonReportsMissingAcks(t *testing.T) {
	w := newWorld(t, 200, true)
	w.hec.SetFailures(0, 0, 0, 1)
	w.extra = []string{"DEFENDER_HEC_ACK_TIMEOUT=100ms"}
	for _, kv := range w.env()[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var log lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"run"}, nil, &log, &log) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "level=ERROR") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sent := w.hec.Stats().Requests
	cancel()
	if code := <-exited; code != 0 {
		t.Errorf("the daemon exited %d after SIGTERM, want 0", code)
	}
	line := ""
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			line = l
			break
		}
	}
	for _, want := range []string{"HEC never acknowledged a batch", "will be sent again", "sent 4 times", "sticky", "restarted"} {
		if !strings.Contains(line, want) {
			t.Errorf("the error line does not say %q: %s", want, line)
		}
	}
	if strings.Contains(log.String(), "stopping: this needs a fix") {
		t.Error("the daemon stopped: a missing ack is worth trying again")
	}
	if sent != 4 {
		t.Errorf("%d requests before the error, want 4 (the batch and three re-sends)", sent)
	}
	w.hec.SetFailures(0, 0, 0, 0)
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run with acks back: %v\n%s", err, out)
	}
	if lost := w.lost(); lost > 0 {
		t.Errorf("%d alerts lost", lost)
	}
}
