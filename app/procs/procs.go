// Package procs sets how many threads of a collector process run Go code at once
// (GOMAXPROCS) from what it runs: one per feed.
package procs

import "runtime"

// Set gives the process one processor per feed (feeds < 1 counts as one), never more than Go
// would use by default (the machine's CPUs, its affinity and its cgroup's CPU limit), unless
// GOMAXPROCS is set (an empty GOMAXPROCS is unset, as the runtime reads it).
//
// A feed's pump spends its time waiting on the APIs, on HEC and on its rate limit; its work
// (decoding, compressing) runs in bursts of one page. Spread over every CPU, those bursts
// cost more CPU for the same work: goroutines handed between cores, threads woken and parked
// around each wait. Measured with two CPUs on 100,000 alerts (docs/benchmarks.md, stop 38):
// the graph-alerts feed (a page every 0.4 s at Graph's rate limit) took 2.34 to 2.49 s of CPU
// with one processor against 2.73 to 3.22 s with two, the endpoint feed no more than before;
// in ./build.sh bench, throughput was unchanged (13,700 alerts/s acks off, 8,000 to 8,900
// with acks after 1 s). It also keeps a collector beside splunkd on a forwarder to a core a
// feed.
func Set(lookup func(string) (string, bool), feeds int) {
	if v, set := lookup("GOMAXPROCS"); set && v != "" {
		return
	}
	if n := max(feeds, 1); n < runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}
