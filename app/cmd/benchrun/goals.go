//go:build unix

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// goalTable: the goal rows at the default settings, with acks off in the same run for
// the CPU ratio. A round runs acks off, then each latency; rounds repeat that, so that a drift
// of the machine touches every row alike. On a small shared VM the CPU of one run moves by
// 10–20% from one run to the next, more than the goal's margin, so every round is printed and
// the ratio is judged on the medians of the rounds; throughput and RSS on every run. As in
// the other tables, only a failed run or a missing alert fails the bench.
func goalTable(bin string, f *ackFlags) (string, bool) {
	lats, err := durations(f.goalLatencies)
	if err != nil {
		fail(fmt.Errorf("-ack-goal-latencies: %w", err))
	}
	rounds := max(f.goalRounds, 1)
	good := true
	var b strings.Builder
	b.WriteString("| round | acks | alerts/s | goal | peak RSS MiB (goal < 64) | CPU µs/alert | CPU vs acks off, this round | wall s | duplicates | missing |\n")
	b.WriteString("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	offs := []float64{}
	ons := make([][]float64, len(lats))
	for round := 1; round <= rounds; round++ {
		off, err := drain(bin, f.goalSize, []string{"-ack=false"}, []string{"DEFENDER_HEC_ACK=off"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			good = false
		}
		offPA := float64(off.m.cpu.Microseconds()) / float64(off.n)
		if err == nil {
			offs = append(offs, offPA) // a failed run's figures stay out of the medians
		}
		fmt.Fprintf(&b, "| %d | off | %.0f | | %.1f | %.1f | 1.00× | %.1f | %d | %d |\n", round, float64(off.n)/off.m.wall.Seconds(),
			mib(off.m.rssKiB), offPA, off.m.wall.Seconds(), num(off.st, "duplicates"), off.missing)
		good = good && off.missing == 0
		fmt.Fprintf(os.Stderr, "done: goal round %d, acks off\n", round)
		for i, lat := range lats {
			r, err := drain(bin, f.goalSize, f.standinLatency(lat), nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchrun:", err)
				good = false
			}
			good = good && r.missing == 0
			rate := float64(r.n) / r.m.wall.Seconds()
			goal := 3000.0
			if lat <= time.Second {
				goal = 5000
			}
			pa := float64(r.m.cpu.Microseconds()) / float64(r.n)
			if err == nil {
				ons[i] = append(ons[i], pa)
			}
			fmt.Fprintf(&b, "| %d | after %v | %.0f | ≥ %.0f %s | %.1f %s | %.1f | %.2f× | %.1f | %d | %d |\n", round, lat, rate, goal, met(rate >= goal),
				mib(r.m.rssKiB), met(mib(r.m.rssKiB) < 64), pa, pa/offPA, r.m.wall.Seconds(), num(r.st, "duplicates"), r.missing)
			fmt.Fprintf(os.Stderr, "done: goal round %d, acks after %v\n", round, lat)
		}
	}
	offMed := median(offs)
	fmt.Fprintf(&b, "\nCPU per alert, the median of the rounds that ran to the end: acks off %.1f µs (%d)", offMed, len(offs))
	for i, lat := range lats {
		m := median(ons[i])
		verdict := "n/a"
		if offMed > 0 && m > 0 {
			verdict = fmt.Sprintf("**%.2f×** %s", m/offMed, met(m <= 1.1*offMed))
		}
		fmt.Fprintf(&b, "; acks after %v %.1f µs (%d), %s", lat, m, len(ons[i]), verdict)
	}
	b.WriteString(" (goal ≤ 1.1× acks off).\n")
	return b.String(), good
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
