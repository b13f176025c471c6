// Package memlimit sets the soft memory limit of a collector process from what it runs: its
// feeds and how many HEC batches each may hold in flight.
package memlimit

import (
	"runtime/debug"

	"ta-defender-alerts/app/hec"
)

// defaultMemoryLimit is the soft limit the collector asks Go's garbage collector to keep its
// memory under, unless GOMEMLIMIT says otherwise: a draining collector's live heap is about
// 35 MiB (batches in flight, the positions of alerts not yet behind the checkpoint), and
// without a limit the heap grows to twice its live size before a collection. The limit is
// soft: above it the collector works harder (at most half the CPU), it never fails for it.
const defaultMemoryLimit = 54 << 20

// Default applies defaultMemoryLimit unless GOMEMLIMIT is set (Go's own setting,
// which the runtime has read: a size such as 200MiB, or off).
func Default(lookup func(string) (string, bool)) { Set(lookup, 1, 0) }

// perFeedMemory is what each feed after the first adds to the limit: its own pump drains, with
// its own batches in flight, at the same time as the others.
const perFeedMemory = 40 << 20

// perBatchMemory is what each batch a feed may hold in flight beyond hec.DefaultMaxInFlight
// adds to the limit: a batch awaiting its ack keeps about 105 KiB live (its compressed body,
// the positions of its alerts: 27.6 MiB live at 64, 47.6 MiB at 256), and the collector needs
// room for twice its live heap. Without it, DEFENDER_HEC_MAX_IN_FLIGHT=256 with acks after 3 s
// ran the garbage collector without pause: 2.4 times the CPU of the same drain at the default
// window (docs/benchmarks.md).
const perBatchMemory = 256 << 10

// Set applies the limit for a process running feeds pumps, each with up to maxInFlight HEC
// batches in flight (0: no HEC output; validated by the hec package: at most 256), unless
// GOMEMLIMIT is set (an empty GOMEMLIMIT is unset, as the runtime reads it).
func Set(lookup func(string) (string, bool), feeds, maxInFlight int) {
	if v, set := lookup("GOMEMLIMIT"); set && v != "" {
		return
	}
	wide := int64(max(feeds, 1)) * int64(max(maxInFlight-hec.DefaultMaxInFlight, 0)) * perBatchMemory
	debug.SetMemoryLimit(defaultMemoryLimit + int64(max(feeds-1, 0))*perFeedMemory + wide)
}
