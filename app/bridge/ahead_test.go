package bridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// firstHeld is a pump over n records whose sink answers every record at once but the first,
// which waits until the test answers it (p.report(Outcome{Last: sink.tags[0], N: 1})).
func firstHeld(t *testing.T, n, maxAhead int) (*Pump, *scripted, func() int) {
	t.Helper()
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var mu sync.Mutex
	added := 0
	sink := &scripted{}
	sink.onAdd = func(s *scripted, tg *Tag) error {
		mu.Lock()
		added++
		mu.Unlock()
		if len(s.tags) > 1 {
			s.report(Outcome{Last: tg, N: 1})
		}
		return nil
	}
	cfg := testConfig(store, dir)
	cfg.MaxAhead, cfg.Grace = maxAhead, 50*time.Millisecond
	p := New(cfg, listSource{n: n}, sink.open)
	return p, sink, func() int { mu.Lock(); defer mu.Unlock(); return added }
}

// While the first record's batch waits (a lost ack, a retry), the sink answers every later
// one at once: reading stops MaxAhead records ahead of the unanswered one instead of keeping
// the tag and position of every record read since, and goes on once it is answered.
func TestReadingStaysWithinMaxAhead(t *testing.T) {
	const ahead = 10
	p, sink, taken := firstHeld(t, 100, ahead)
	done := make(chan error, 1)
	go func() { done <- p.Drain(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	if n := taken(); n != ahead {
		t.Fatalf("%d records read while the first waited, want %d (MaxAhead)", n, ahead)
	}
	select {
	case err := <-done:
		t.Fatalf("the drain ended (%v) with the first record unanswered", err)
	default:
	}
	p.report(Outcome{Last: sink.tags[0], N: 1})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not go on once the first record was answered")
	}
	if st := p.Stats(); st.Confirmed != 100 || st.Windows != 1 {
		t.Errorf("confirmed %d in %d windows, want 100 in 1", st.Confirmed, st.Windows)
	}
}

// A stop while reading waits for room ends the drain at once, with nothing committed past
// the unanswered record.
func TestStopWhileReadingWaits(t *testing.T) {
	p, _, _ := firstHeld(t, 100, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Drain(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the drain ended without an error, with its first record unanswered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stop did not end a drain whose reading waited for room")
	}
	if st := p.Stats(); st.Windows != 0 || st.Read != 10 {
		t.Errorf("%d windows committed, %d records read; want 0 and 10", st.Windows, st.Read)
	}
}
