package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"ta-defender-alerts/app/retry"
)

// NeedsFix reports whether err is one that a person must fix before collection can go on:
// Splunk refuses every alert (a proxy or a setting), or the error says it does not clear by
// itself (retry.Retryable): Entra ID refused the login (wrong or expired secret, unknown
// client or tenant, bad certificate), the API refused the app (missing permission, wrong
// address, a query it rejects), HEC refused the token or the index, a setting is wrong, the
// checkpoint cannot be read or written. Everything else clears by itself: throttling, expired
// tokens, 5xx, timeouts, HEC busy or down, acknowledgements that did not come, and errors
// nothing classified; a collector rides those out.
func NeedsFix(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, errRefusedAll) {
		return true
	}
	retryable, known := retry.Retryable(err)
	return known && !retryable
}

// Persist calls drain until it succeeds, fails with an error that NeedsFix, or ctx ends. It
// logs every other failure and backs off before the next try: first, doubling, at most limit,
// each wait jittered (retry.Delay).
// With giveUp > 0 it also stops once failures have gone on that long without a success. At
// the end it returns the last failure (or ctx's error if there was none).
func Persist(ctx context.Context, log *slog.Logger, first, limit, giveUp time.Duration, drain func(context.Context) error) error {
	fails := 0
	var failingSince time.Time
	for {
		err := drain(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			if errors.Is(err, ctx.Err()) {
				return ctx.Err()
			}
			return err
		case NeedsFix(err):
			return err // the caller logs it, once, marked needs_fix
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		} else if giveUp > 0 && time.Since(failingSince) >= giveUp {
			return fmt.Errorf("still failing after %v of tries: %w", giveUp.Round(time.Second), err)
		}
		fails++
		wait := retry.Delay(first, limit, fails)
		log.Warn("collection failed; it clears by itself, so it will be tried again", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// LogRetryAfter makes the Defender client's Retry-After notice a log line: what Microsoft
// asked and how long the collector waits (capped at an hour).
func LogRetryAfter(log *slog.Logger) func(status int, asked string, wait time.Duration) {
	return func(status int, asked string, wait time.Duration) {
		log.Info("the Defender API asked the collector to wait", "status", status, "retry_after", asked, "waiting", wait.Round(time.Millisecond).String())
	}
}

// hecRetryLogEvery is how often, at most, a HEC URL's retries are logged.
const hecRetryLogEvery = time.Minute

// LogHECRetry makes the HEC client's retries WARN lines, at most one per URL every
// hecRetryLogEvery, with the number of retries since the last line.
func LogHECRetry(log *slog.Logger) func(url string, err error, wait time.Duration) {
	type seen struct {
		last   time.Time
		quiet  int // retries not logged since last
		logged bool
	}
	var mu sync.Mutex
	byURL := map[string]*seen{}
	return func(url string, err error, wait time.Duration) {
		mu.Lock()
		s := byURL[url]
		if s == nil {
			s = &seen{}
			byURL[url] = s
		}
		now := time.Now()
		if s.logged && now.Sub(s.last) < hecRetryLogEvery {
			s.quiet++
			mu.Unlock()
			return
		}
		quiet := s.quiet
		s.last, s.quiet, s.logged = now, 0, true
		mu.Unlock()
		log.Warn("HEC did not take a batch; it will be sent again", "url", url, "err", err,
			"retry_in", wait.Round(time.Millisecond).String(), "retries_not_logged", quiet)
	}
}
