package procs

import (
	"runtime"
	"testing"
)

func TestSet(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		env          map[string]string
		feeds, start int
		want         int
	}{
		{env: map[string]string{}, feeds: 1, start: 8, want: 1},
		{env: map[string]string{}, feeds: 0, start: 8, want: 1},
		{env: map[string]string{}, feeds: 3, start: 8, want: 3},
		{env: map[string]string{}, feeds: 3, start: 2, want: 2},                  // never more than the default
		{env: map[string]string{"GOMAXPROCS": "6"}, feeds: 1, start: 6, want: 6}, // the admin's, left alone
		{env: map[string]string{"GOMAXPROCS": ""}, feeds: 2, start: 8, want: 2},  // what the runtime ignores, Set does too
		{env: map[string]string{"GOMAXPROCS": "0"}, feeds: 2, start: 8, want: 2},
		{env: map[string]string{"GOMAXPROCS": "many"}, feeds: 1, start: 8, want: 1},
		{env: map[string]string{"GOMAXPROCS": "+4"}, feeds: 1, start: 8, want: 1},
	} {
		runtime.GOMAXPROCS(tc.start)
		Set(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }, tc.feeds)
		if got := runtime.GOMAXPROCS(0); got != tc.want {
			t.Errorf("feeds %d, env %v, from %d: GOMAXPROCS %d, want %d", tc.feeds, tc.env, tc.start, got, tc.want)
		}
	}
}
