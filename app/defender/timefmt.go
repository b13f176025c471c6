package defender

import (
	"errors"
	"time"
)

// TimeResolution is the API's time resolution: 7 fractional digits of a second.
const TimeResolution = 100 * time.Nanosecond

// FilterTime formats t as the API's $filter wants it: unquoted ISO-8601 UTC, 7 fractional digits.
func FilterTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// parseTime reads the API's UTC times ("2021-01-26T20:33:59.2Z", 0 to 9 fractional digits),
// with a fast path for that exact shape and RFC 3339 for anything else.
func parseTime(s string) (time.Time, error) {
	if t, ok := parseZ([]byte(s)); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("not an ISO-8601 time")
	}
	return t.UTC(), nil
}

func parseZ(s []byte) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	mon, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hh, ok4 := num(11, 13)
	mm, ok5 := num(14, 16)
	ss, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, false
	}
	ns := 0
	rest := s[19 : len(s)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		f, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for k := len(rest) - 1; k < 9; k++ {
			f *= 10
		}
		ns = f
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, ns, time.UTC)
	if t.Day() != day { // 31 February and the like
		return time.Time{}, false
	}
	return t, true
}
