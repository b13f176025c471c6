package retry

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"
)

type kinded bool

func (k kinded) Error() string   { return "kinded" }
func (k kinded) Retryable() bool { return bool(k) }

func TestRetryable(t *testing.T) {
	tests := []struct {
		name            string
		err             error
		retryable, know bool
	}{
		{"nil", nil, false, false},
		{"plain", errors.New("x"), false, false},
		{"retryable", kinded(true), true, true},
		{"needs a fix", kinded(false), false, true},
		{"wrapped", fmt.Errorf("reading: %w", kinded(true)), true, true},
		{"first in the chain wins", fmt.Errorf("a: %w", errors.Join(kinded(false), kinded(true))), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, k := Retryable(tt.err)
			if r != tt.retryable || k != tt.know {
				t.Errorf("Retryable = %v, %v; want %v, %v", r, k, tt.retryable, tt.know)
			}
		})
	}
}

func TestAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"  ", 0},
		{"7", 7 * time.Second},
		{"0.25", 250 * time.Millisecond},
		{"-3", 0},
		{"junk", 0},
		{"86400", MaxAfter},
		{"1e300", MaxAfter},
		{"Tue, 01 Dec 2026 10:00:30 GMT", 30 * time.Second},
		{"Tue, 01 Dec 2026 09:59:00 GMT", 0},
		{"Wed, 01 Dec 2027 10:00:00 GMT", MaxAfter},
	}
	for _, tt := range tests {
		if got := After(tt.v, now); got != tt.want {
			t.Errorf("After(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestURLError(t *testing.T) {
	inner := errors.New("connection refused")
	err := &url.Error{Op: "Post", URL: "https://user:pw@hec.example.com:8088/services/collector?x=1", Err: inner}
	if got := URLError(err); got != inner {
		t.Errorf("URLError = %v, want the inner error", got)
	}
	if got := URLError(inner); got != inner {
		t.Errorf("URLError changed a plain error: %v", got)
	}
}

func TestBackoffAndDelay(t *testing.T) {
	b := NewBackoff(100*time.Millisecond, time.Second)
	for i, base := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		base *= time.Millisecond
		if d := b.NextBackOff(); d < base/2 || d > base*3/2 {
			t.Errorf("wait %d = %v, want within ±50%% of %v", i+1, d, base)
		}
	}
	for n, base := range map[int]time.Duration{0: 100, 1: 100, 2: 200, 3: 400, 5: 1000, 40: 1000} {
		base *= time.Millisecond
		for range 50 {
			if d := Delay(100*time.Millisecond, time.Second, n); d < base/2 || d > base {
				t.Fatalf("Delay(n=%d) = %v, want in [%v, %v]", n, d, base/2, base)
			}
		}
	}
	if d := Delay(0, time.Second, 3); d != 0 {
		t.Errorf("Delay with no initial wait = %v", d)
	}
	// However many failures, a long first wait doubles up to max and no further (a shift by
	// the count overflowed past 2^63 ns and gave no wait at all).
	for _, n := range []int{31, 40, 64, 1000, 1 << 30} {
		if d := Delay(10*time.Second, 30*time.Second, n); d < 15*time.Second || d > 30*time.Second {
			t.Errorf("Delay(10s, 30s, n=%d) = %v, want in [15s, 30s]", n, d)
		}
	}
}

func FuzzAfter(f *testing.F) {
	for _, s := range []string{"1", "0.5", "Tue, 01 Dec 2026 10:00:30 GMT", "-1", "NaN", "Inf", "1e400"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := After(v, now); d < 0 || d > MaxAfter {
			t.Fatalf("After(%q) = %v, outside [0, %v]", v, d, MaxAfter)
		}
	})
}
