package hec

import (
	"testing"
	"time"
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
			l.relearnGap()
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
	l.relearnGap()
	if got := c.pollGap(l); got != 500*time.Millisecond {
		t.Fatalf("after slow acks: pollGap = %v, want 500ms", got)
	}
	for range len(l.lat)/2 + 1 {
		l.learnLatency(200 * time.Millisecond)
	}
	l.relearnGap()
	if got := c.pollGap(l); got != 50*time.Millisecond {
		t.Fatalf("after fast acks took over the recent ones: pollGap = %v, want 50ms", got)
	}
}
