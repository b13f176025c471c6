package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/version"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		give     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "version", give: []string{"version"}, wantOut: "defender_alerts " + version.Version + "\n"},
		{name: "help", give: []string{"help"}, wantOut: "Usage:"},
		{name: "unknown", give: []string{"frobnicate"}, wantCode: 2, wantErr: `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.give, strings.NewReader(""), &out, &errb)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errb.String(), tt.wantErr)
			}
		})
	}
}

// Polls start every interval, whatever each one took (its wait for acks included).
func TestUntilNextPoll(t *testing.T) {
	for _, c := range []struct{ interval, took, want time.Duration }{
		{5 * time.Second, 0, 5 * time.Second},
		{5 * time.Second, 1200 * time.Millisecond, 3800 * time.Millisecond},
		{5 * time.Second, 5 * time.Second, 0},
		{5 * time.Second, 40 * time.Second, 0},
	} {
		if got := untilNextPoll(c.interval, c.took); got != c.want {
			t.Errorf("interval %v, poll took %v: next poll in %v, want %v", c.interval, c.took, got, c.want)
		}
	}
}
