package hec

import (
	"slices"
	"time"
)

// What the poller learns of a URL's ack latencies: when a batch is overdue (p95) and how
// often to poll (pollGap).

// p95 is the 95th percentile of the recent latencies (0 before any), as of the last relearn.
func (l *ackLine) p95() time.Duration { return l.p95v }

const firstAckPoll = 20 * time.Millisecond

// pollGap is the least time between two polls of l's URL: many batches in flight share
// each poll instead of each asking on its own schedule. It is 50 ms, or a tenth of the
// URL's median ack latency when that is longer (polling a batch whose ack takes seconds
// every 50 ms costs CPU on both sides and confirms it at most a tenth later), and never
// more than AckInterval.
func (c *Client) pollGap(l *ackLine) time.Duration {
	return min(c.cfg.AckInterval, max(50*time.Millisecond, l.slow))
}

// learnLatency records one ack latency of l's URL.
func (l *ackLine) learnLatency(d time.Duration) {
	l.lat[l.latN%len(l.lat)] = d
	l.latN++
}

// relearn sets, from the recent latencies, l.slow (a tenth of their median, for pollGap)
// and their 95th percentile (p95), sorting them once.
func (l *ackLine) relearn() {
	n := min(l.latN, len(l.lat))
	if n == 0 {
		return
	}
	s := slices.Clone(l.lat[:n])
	slices.Sort(s)
	l.slow = s[n/2] / 10
	l.p95v = s[(n*95+99)/100-1]
}
