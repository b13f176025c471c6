package config

import (
	"errors"
	"log/slog"
	"testing"
)

// Events name their input unless a source is set: in the standalone collector the input is
// DEFENDER_INPUT, else the tenant id.
func TestSourceNamesTheInput(t *testing.T) {
	tests := []struct {
		name string
		give map[string]string
		want string
	}{
		{name: "DEFENDER_INPUT", give: map[string]string{"DEFENDER_INPUT": "contoso-prod"}, want: "contoso-prod"},
		{name: "no input: the tenant id", give: nil, want: "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"},
		{name: "set source wins", give: map[string]string{"DEFENDER_INPUT": "contoso-prod", "DEFENDER_HEC_SOURCE": "mde"}, want: "mde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := good()
			for k, v := range tt.give {
				env[k] = v
			}
			setEnv(t, env)
			c, err := FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if c.HEC.Source != tt.want {
				t.Errorf("source %q, want %q", c.HEC.Source, tt.want)
			}
		})
	}
	// A stanza: the source it sets, else the input's name (the modular input passes its
	// stanza's name as the source first).
	for give, want := range map[string]string{"": "tenant1", "defender_alerts://tenant1": "defender_alerts://tenant1", " mde ": "mde"} {
		p := goodParams()
		p["source"] = give
		c, err := FromParams(p, t.TempDir(), "tenant1")
		if err != nil || c.HEC.Source != want {
			t.Errorf("stanza source %q: %q (%v), want %q", give, c.HEC.Source, err, want)
		}
	}
}

// A stanza's log_level is read alike by ParamLogLevel (before the rest) and FromParams; a bad
// one is an error naming log_level.
func TestStanzaLogLevel(t *testing.T) {
	tests := []struct {
		give    string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{" INFO ", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"loud", 0, true},
	}
	for _, tt := range tests {
		p := goodParams()
		p["log_level"] = tt.give
		early, err1 := ParamLogLevel(p)
		c, err2 := FromParams(p, t.TempDir(), "tenant1")
		if tt.wantErr {
			for _, err := range []error{err1, err2} {
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != "log_level" || ce.Value != tt.give || ce.Msg != "must be debug, info, warn or error" {
					t.Errorf("log_level %q: %v, want an error naming log_level", tt.give, err)
				}
			}
			continue
		}
		if err1 != nil || err2 != nil || early != tt.want || c.LogLevel != tt.want {
			t.Errorf("log_level %q: %v (%v), %v (%v), want %v", tt.give, early, err1, c, err2, tt.want)
		}
	}
}
