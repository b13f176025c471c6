// Package procs sets how many threads of a collector process run Go code at once
// (GOMAXPROCS) from what it runs: one per feed.
package procs

import (
	"runtime"
	"strconv"
)

// Set gives the process one processor per feed (feeds < 1 counts as one), never more than Go
// would use by default (the machine's CPUs, its affinity and its cgroup's CPU limit), unless
// GOMAXPROCS holds a number of processors (the runtime ignores any other value, and so does Set).
//
// A feed's pump spends its time waiting on the APIs, on HEC and on its rate limit; its work
// (decoding, compressing) runs in bursts of one page. Measured on a 2-core machine shared with
// the stand-ins (docs/benchmarks.md, stop 38), the same drains took about the same CPU with one
// processor as with two, or less (the graph-alerts feed, a page every 0.4 s at
// Graph's rate limit, 2.34 to 2.49 s of CPU for 100,000 alerts against 2.73 to 3.22 s), in the
// same wall time. It also keeps a collector beside splunkd on a forwarder to a core a feed.
func Set(lookup func(string) (string, bool), feeds int) {
	if v, set := lookup("GOMAXPROCS"); set {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && v[0] != '+' { // as the runtime reads it
			return
		}
	}
	if n := max(feeds, 1); n < runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}
