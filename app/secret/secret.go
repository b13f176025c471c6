// Package secret holds a string type for credentials (client secrets, tokens, keys) that
// redacts itself wherever it could be printed: fmt verbs, JSON, slog.
package secret

import (
	"fmt"
	"log/slog"
)

// String is a secret value. Only Reveal returns the value itself.
type String string

const redacted = "[redacted]"

// Reveal returns the secret for the one place that must send it.
func (s String) Reveal() string { return string(s) }

// IsZero reports whether no secret is set.
func (s String) IsZero() bool { return s == "" }

func (s String) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s String) GoString() string { return fmt.Sprintf("secret.String(%q)", s.String()) }

// Format covers every fmt verb, so that %x or %d cannot print the bytes either.
func (s String) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON keeps secrets out of JSON documents.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText keeps secrets out of text encodings (slog's text handler uses it too).
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps secrets out of structured logs.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }
