package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
)

// classified is an error of another package that classifies itself.
type classified bool

func (c classified) Error() string   { return "custom" }
func (c classified) Retryable() bool { return bool(c) }

func TestNeedsFix(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"throttled", &defender.APIError{Kind: defender.Throttled, Status: 429}, false},
		{"5xx", fmt.Errorf("reading alerts: giving up after 6 attempts: %w", &defender.APIError{Kind: defender.Transient, Status: 500}), false},
		{"expired token after a wait", &defender.APIError{Kind: defender.Unauthorized, Status: 401}, false},
		{"token endpoint down", &defender.TokenError{Reason: defender.TokenFailed, Transient: true}, false},
		{"wrong secret", &defender.TokenError{Reason: defender.WrongSecret, Code: 7000215}, true},
		{"unknown tenant", &defender.TokenError{Reason: defender.UnknownTenant, Code: 90002}, true},
		{"missing permission", fmt.Errorf("reading alerts: %w", &defender.APIError{Kind: defender.Permanent, Status: 403}), true},
		{"fresh token refused", fmt.Errorf("x: %w", &defender.APIError{Kind: defender.Permanent, Status: 401}), true},
		{"HEC busy", fmt.Errorf("delivery failed: %w", &hec.Error{Kind: hec.Retry, Status: 503}), false},
		{"HEC bad token", fmt.Errorf("delivery failed: %w", &hec.Error{Kind: hec.Fatal, Status: 403}), true},
		{"index refused", &hec.Error{Kind: hec.Fatal, Status: 400, Code: 7}, true},
		{"delivery incomplete", errors.New("delivery stopped before every alert was confirmed"), false},
		{"deadline", context.DeadlineExceeded, false},
		{"cancelled", context.Canceled, false},
		{"Splunk refuses everything", fmt.Errorf("delivery failed: %w", fmt.Errorf("%w: …", ErrRefusedAll)), true},
		{"no ack after three sends", fmt.Errorf("delivery failed: %w", &hec.Error{Kind: hec.Retry, Err: fmt.Errorf("%w for a batch", hec.ErrNoAck)}), false},
		{"classified as needing a fix", fmt.Errorf("w: %w", classified(false)), true},
		{"classified as clearing by itself", classified(true), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsFix(tt.give); got != tt.want {
				t.Errorf("NeedsFix(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestPersistRidesOutWhatClearsByItself(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	throttled := &defender.APIError{Kind: defender.Throttled, Status: 429}
	calls := 0
	err := Persist(context.Background(), log, time.Millisecond, 4*time.Millisecond, 0, func(context.Context) error {
		calls++
		if calls < 5 {
			return throttled
		}
		return nil
	})
	if err != nil || calls != 5 {
		t.Fatalf("err %v after %d calls, want nil after 5", err, calls)
	}

	fatal := &hec.Error{Kind: hec.Fatal, Status: 403}
	calls = 0
	err = Persist(context.Background(), log, time.Millisecond, time.Millisecond, 0, func(context.Context) error { calls++; return fatal })
	if !errors.Is(err, fatal) || calls != 1 {
		t.Fatalf("err %v after %d calls, want the fatal error after 1", err, calls)
	}

	// At ctx's end (a give-up time), the last failure is returned, not just "deadline".
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = Persist(ctx, log, time.Millisecond, 5*time.Millisecond, 0, func(context.Context) error { return throttled })
	if !errors.Is(err, throttled) {
		t.Fatalf("err = %v, want the last failure", err)
	}

	// A give-up time bounds a run whose failures go on (a modular input run).
	begun := time.Now()
	err = Persist(context.Background(), log, time.Millisecond, 5*time.Millisecond, 40*time.Millisecond, func(context.Context) error { return throttled })
	if !errors.Is(err, throttled) || !strings.Contains(err.Error(), "still failing") || time.Since(begun) > 2*time.Second {
		t.Fatalf("err = %v after %v, want the last failure after about 40ms", err, time.Since(begun))
	}
}

func TestCheckpointProblemsNeedAFix(t *testing.T) {
	err := fmt.Errorf("delivery: %w", &checkpoint.FixError{Err: errors.New("checkpoint x.json cannot be written: read-only file system")})
	if !NeedsFix(err) {
		t.Errorf("NeedsFix(%v) = false, want true", err)
	}
}
