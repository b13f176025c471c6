package textclean_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"ta-defender-alerts/app/textclean"
)

func TestLine(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"plain", "Unauthorized", "Unauthorized"},
		{"line breaks and tabs", "first\r\nsecond\tthird\n", "first second third"},
		{"terminal escapes", "bad \x1b[2J\x1b]0;title\x07key", "bad [2J]0;titlekey"},
		{"C1 controls", "a\u0085b\u009b31mc", "ab31mc"},
		{"DEL", "a\x7fb", "ab"},
		{"bidirectional and zero-width", "key \u202eyek\u202c\u200b\u2066x\u2069\ufeff", "key yekx"},
		{"invalid UTF-8", "bad \xff\xfe key", "bad \ufffd key"},
		{"keeps other scripts", "Schlüssel ungültig — 鍵", "Schlüssel ungültig — 鍵"},
		{"exactly the limit", strings.Repeat("é", textclean.Max), strings.Repeat("é", textclean.Max)},
		{"over the limit", strings.Repeat("é", textclean.Max+1), strings.Repeat("é", textclean.Max) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := textclean.Line(tt.give)
			if got != tt.want {
				t.Errorf("Line(%q) = %q, want %q", tt.give, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("invalid UTF-8 in %q", got)
			}
			for _, r := range got {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Errorf("control or format character %U left in %q", r, got)
				}
			}
		})
	}
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "a\x1b[31mb", "\u202e", "\xff", strings.Repeat("x", 500)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := textclean.Line(s)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > textclean.Max+1 {
			t.Fatalf("Line(%q) = %q", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("control or format character %U left in %q", r, got)
			}
		}
	})
}
