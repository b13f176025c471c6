package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for _, tc := range []struct {
		env  map[string]string
		want int64
	}{
		{env: map[string]string{}, want: defaultMemoryLimit},
		{env: map[string]string{"GOMEMLIMIT": "200MiB"}, want: math.MaxInt64}, // the runtime's own, left alone
		{env: map[string]string{"GOMEMLIMIT": "off"}, want: math.MaxInt64},
		{env: map[string]string{"GOMEMLIMIT": ""}, want: defaultMemoryLimit}, // empty is unset, to the runtime too
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		Default(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("GOMEMLIMIT %q: limit %d, want %d", tc.env["GOMEMLIMIT"], got, tc.want)
		}
	}
}

// A window wider than the default raises the limit by perBatchMemory a batch, for each feed;
// the default window, or none (syslog), leaves it where it was.
func TestMemoryLimitFollowsTheWindow(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		feeds, inFlight int
		want            int64
	}{
		{1, 0, defaultMemoryLimit},
		{1, 1, defaultMemoryLimit},
		{1, 64, defaultMemoryLimit},
		{1, 256, defaultMemoryLimit + 192*perBatchMemory},
		{2, 64, defaultMemoryLimit + perFeedMemory},
		{3, 65, defaultMemoryLimit + 2*perFeedMemory + 3*perBatchMemory},
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		Set(none, tc.feeds, tc.inFlight)
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("%d feeds, %d batches in flight: limit %d MiB, want %d MiB", tc.feeds, tc.inFlight, got>>20, tc.want>>20)
		}
	}
}
