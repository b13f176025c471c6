package hec

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ta-defender-alerts/app/hectest"
)

func TestPollGapFollowsTheMedianLatency(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name     string
		interval time.Duration
		lat      []time.Duration
		want     time.Duration
	}{
		{"no latency known yet", time.Second, nil, 50 * ms},
		{"fast acks keep the floor", time.Second, []time.Duration{80 * ms, 120 * ms, 300 * ms}, 50 * ms},
		{"slow acks poll less often", time.Second, []time.Duration{2500 * ms, 3 * time.Second, 9 * time.Second}, 300 * ms},
		{"one slow ack does not move the median", time.Second, []time.Duration{100 * ms, 110 * ms, 30 * time.Second}, 50 * ms},
		{"never beyond the ack interval", time.Second, []time.Duration{40 * time.Second, 50 * time.Second}, time.Second},
		{"a short ack interval stays the bound", 20 * ms, []time.Duration{3 * time.Second}, 20 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{cfg: Config{AckInterval: tc.interval}}
			l := &ackLine{}
			for _, d := range tc.lat {
				l.learnLatency(d)
			}
			l.relearn()
			if got := c.pollGap(l); got != tc.want {
				t.Errorf("pollGap = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPollGapForgetsOldLatencies(t *testing.T) {
	c := &Client{cfg: Config{AckInterval: time.Second}}
	l := &ackLine{}
	for range len(l.lat) {
		l.learnLatency(5 * time.Second)
	}
	l.relearn()
	if got := c.pollGap(l); got != 500*time.Millisecond {
		t.Fatalf("after slow acks: pollGap = %v, want 500ms", got)
	}
	for range len(l.lat)/2 + 1 {
		l.learnLatency(200 * time.Millisecond)
	}
	l.relearn()
	if got := c.pollGap(l); got != 50*time.Millisecond {
		t.Fatalf("after fast acks took over the recent ones: pollGap = %v, want 50ms", got)
	}
}

// The poller itself keeps to the gap it learned: with acks taking 2 s, batches sent every
// 50 ms are asked about a few times a second, not every 50 ms.
func TestPollerKeepsTheLearnedGap(t *testing.T) {
	srv := hectest.New(hectest.Options{Token: "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8", Ack: true})
	t.Cleanup(srv.Close)
	srv.SetAckDelay(2 * time.Second)
	c, err := New(Config{URLs: []string{srv.URL}, Token: "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8", AckTimeout: 20 * time.Second,
		BatchCount: 1, MaxInFlight: 64, Window: WindowFixed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := c.NewBatchSender(time.Hour, func(Outcome) {})
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			ev := fmt.Sprintf(`{"id":"a%d"}`, i)
			if err := s.Add(context.Background(), Record{Time: time.Now(), Event: []byte(ev), ID: fmt.Sprint(i)}, nil); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	send(0, 4) // the poller learns the latency from these
	c.Wait()
	before, start := c.Stats().AckPolls, time.Now()
	send(4, 40)
	c.Wait()
	polls, took := c.Stats().AckPolls-before, time.Since(start)
	// A tenth of the median latency (about 200 ms) between polls; 50 ms would give ~4 times more.
	if limit := int(took/(150*time.Millisecond)) + 3; polls > limit {
		t.Errorf("%d polls in %v, want at most %d (one per ~200 ms)", polls, took.Round(time.Millisecond), limit)
	}
	t.Logf("%d polls in %v", polls, took.Round(time.Millisecond))
}
