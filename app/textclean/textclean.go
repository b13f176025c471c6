// Package textclean makes text from a remote server (an error message, a proxy's page) safe
// to quote in an error, a log line or a terminal. It imports nothing of this module, so any
// package may use it.
package textclean

import (
	"strings"
	"unicode"
)

// Max is how much of a remote message an error quotes, in characters.
const Max = 200

// Line makes remote text one short printable line: invalid UTF-8 becomes U+FFFD, line breaks
// and tabs become single spaces, other control and formatting characters (terminal escapes,
// C1 controls, bidirectional overrides, zero-width characters) are removed, runs of spaces
// become one, and the result is cut to Max characters.
func Line(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
	return Clip(strings.Join(strings.Fields(s), " "), Max)
}

// Clip cuts s to n characters, marking the cut with "…".
func Clip(s string, n int) string {
	k := 0
	for i := range s {
		if k == n {
			return s[:i] + "…"
		}
		k++
	}
	return s
}
