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

// classified is an error that classifies itself (retry.Classified), as the clients' errors
// do; which of theirs clear by themselves is tested where they are classified
// (defender.TestErrorsSayWhetherTheyClearByThemselves, hec.TestErrorsSayWhetherTheyClearByThemselves).
type classified bool

func (c classified) Error() string   { return "custom" }
func (c classified) Retryable() bool { return bool(c) }

func TestNeedsFix(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"clears by itself", classified(true), false},
		{"clears by itself, wrapped", fmt.Errorf("reading alerts: giving up after 6 attempts: %w", classified(true)), false},
		{"needs a fix", classified(false), true},
		{"needs a fix, wrapped", fmt.Errorf("delivery failed: %w", classified(false)), true},
		{"the first classified error in the chain decides", fmt.Errorf("a: %w", fmt.Errorf("b %w: %w", classified(true), classified(false))), false},
		{"wrong secret", &defender.TokenError{Reason: defender.WrongSecret, Code: 7000215}, true},
		{"unknown tenant", &defender.TokenError{Reason: defender.UnknownTenant, Code: 90002}, true},
		{"missing permission", fmt.Errorf("reading alerts: %w", &defender.APIError{Status: 403}), true},
		{"bad Defender setting", &defender.FieldError{Field: "Region", Msg: "is not a documented region"}, true},
		{"HEC bad token", fmt.Errorf("delivery failed: %w", &hec.Error{Status: 403}), true},
		{"bad HEC setting", &hec.FieldError{Field: "URLs", Msg: "is required"}, true},
		{"checkpoint unreadable", &checkpoint.FixError{Err: errors.New("checkpoint x.json cannot be read")}, true},
		{"delivery incomplete", errors.New("delivery stopped before every alert was confirmed"), false},
		{"no ack, unclassified", fmt.Errorf("%w for a batch", hec.ErrNoAck), false},
		{"deadline", context.DeadlineExceeded, false},
		{"cancelled", context.Canceled, false},
		{"cancelled, whatever it wraps", fmt.Errorf("%w: %w", context.Canceled, classified(false)), false},
		{"Splunk refuses everything", fmt.Errorf("delivery failed: %w", fmt.Errorf("%w: …", errRefusedAll)), true},
		{"Splunk refuses everything, whatever else is said", fmt.Errorf("%w: %w", errRefusedAll, classified(true)), true},
		{"nil", nil, false},
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
	throttled := fmt.Errorf("HTTP 429: %w", classified(true))
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

	fatal := &hec.Error{Status: 403, Hint: "the HEC token is not valid"}
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
