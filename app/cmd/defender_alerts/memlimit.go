package main

import (
	"runtime/debug"
)

// defaultMemoryLimit is the soft limit the collector asks Go's garbage collector to keep its
// memory under, unless GOMEMLIMIT says otherwise: a draining collector's live heap is about
// 35 MiB (batches in flight, the positions of alerts not yet behind the checkpoint), and
// without a limit the heap grows to twice its live size before a collection. The limit is
// soft: above it the collector works harder (at most half the CPU), it never fails for it.
const defaultMemoryLimit = 54 << 20

// setMemoryLimit applies defaultMemoryLimit unless GOMEMLIMIT is set (Go's own setting,
// which the runtime has read: a size such as 200MiB, or off).
func setMemoryLimit(lookup func(string) (string, bool)) bool {
	return setMemoryLimitFor(lookup, 1)
}

// perFeedMemory is what each feed after the first adds to the limit: its own pump drains, with
// its own batches in flight, at the same time as the others.
const perFeedMemory = 40 << 20

// setMemoryLimitFor applies the limit for a process running feeds pumps, unless GOMEMLIMIT is
// set.
func setMemoryLimitFor(lookup func(string) (string, bool), feeds int) bool {
	if _, set := lookup("GOMEMLIMIT"); set {
		return false
	}
	debug.SetMemoryLimit(defaultMemoryLimit + int64(max(feeds-1, 0))*perFeedMemory)
	return true
}
