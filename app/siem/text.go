package siem

import (
	"strings"
	"time"
	"unicode/utf8"
)

// cutMark ends a value that was cut to its key's limit.
const cutMark = "…"

// cut returns s with invalid UTF-8 replaced by U+FFFD and, when it has more than limit code
// points, cut to limit code points: the first limit-1 of s, then "…". (The limits are in
// characters in the CEF standard; counting code points never splits a character's bytes.)
func cut(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= limit { // bytes >= code points
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			if utf8.RuneCountInString(s[i:]) <= 1 {
				return s // exactly limit code points
			}
			return s[:i] + cutMark
		}
		n++
	}
	return s
}

// severityNumber places the Alert API's severity on the 0-10 scale that CEF and LEEF share
// (CEF: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high; LEEF's sev is 1-10). Informational is
// 1, Low 3, Medium 5, High 8; anything else (UnSpecified, a new value) has no number.
func severityNumber(s string) (int, bool) {
	switch {
	case strings.EqualFold(s, "Informational"):
		return 1, true
	case strings.EqualFold(s, "Low"):
		return 3, true
	case strings.EqualFold(s, "Medium"):
		return 5, true
	case strings.EqualFold(s, "High"):
		return 8, true
	}
	return 0, false
}

// epochMillis is t in epoch milliseconds, the time form both CEF and LEEF take without a
// format string (CEF does not take ISO 8601 at all); false for a zero time or one before 1970
// or after 9999, which the formats cannot carry as a count of milliseconds.
func epochMillis(t time.Time) (int64, bool) {
	if t.IsZero() || t.Year() < 1970 || t.Year() > 9999 {
		return 0, false
	}
	return t.UnixMilli(), true
}

// classID is what both formats use to name the kind of event (CEF's Device Event Class ID,
// LEEF's EventID): the detector (the rule that raised the alert, the old IoaDefinitionId),
// else the alert's title, which also names the rule.
func classID(d *Detection) string {
	if d.IoaDefinitionID != "" {
		return d.IoaDefinitionID
	}
	if d.AlertTitle != "" {
		return d.AlertTitle
	}
	return "Unknown"
}

func boolNumber(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
