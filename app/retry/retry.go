// Package retry is what the HTTP clients (defender, hec) and the loops above them share about
// failures: one classification (an error says whether it clears by itself), one reading of
// Retry-After, one backoff, and one way to quote a network error.
//
// The clients classify an error once, where they see the status code, and give it a
// Retryable method; callers branch on Retryable(err) and never on a client's own kinds.
package retry

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Classified is an error that says whether it clears by itself. false means a person must
// fix something (a secret, a permission, an address, a setting) before trying again helps.
type Classified interface{ Retryable() bool }

// Retryable reports whether err clears by itself, as the first Classified error in its chain
// says; known is false when nothing in the chain is classified.
func Retryable(err error) (retryable, known bool) {
	var c Classified
	if errors.As(err, &c) {
		return c.Retryable(), true
	}
	return false, false
}

// MaxAfter caps a Retry-After: the longest quota window Microsoft documents is an hour, so an
// hourly quota is still honoured, and a far-off date cannot stop a collector silently.
const MaxAfter = time.Hour

// After reads a Retry-After header, in seconds or as an HTTP date (compared with now, which
// should be the server's clock where it is known), as a wait in [0, MaxAfter]. An empty or
// unreadable header is 0.
func After(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		if n > MaxAfter.Seconds() {
			return MaxAfter
		}
		d = time.Duration(n * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxAfter)
}

// URLError drops what *url.Error adds to a network error (the method and the whole URL,
// which can hold a query or credentials): the caller names the service itself.
func URLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// NewBackoff is the one backoff: exponential from initial, doubling, at most max, each wait
// randomised by ±50 % so that clients that failed together do not retry together. It never
// gives up by itself (callers bound their tries by time).
func NewBackoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// Delay is the backoff's wait after the n-th failure in a row (n ≥ 1), for callers that keep
// a count instead of a Backoff: initial doubled n-1 times, at most max, then jittered down to
// between half of it and all of it (never above max).
func Delay(initial, max time.Duration, n int) time.Duration {
	if initial <= 0 || max <= 0 {
		return 0
	}
	d := min(initial, max)
	for i := 1; i < n && d < max; i++ { // doubling stops at max, so it cannot overflow
		if d > max/2 {
			d = max
		} else {
			d *= 2
		}
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
