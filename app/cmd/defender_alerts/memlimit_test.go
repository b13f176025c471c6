package main

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
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		setMemoryLimit(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("GOMEMLIMIT %q: limit %d, want %d", tc.env["GOMEMLIMIT"], got, tc.want)
		}
	}
}
