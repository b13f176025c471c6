package siemtest

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// LEEFEvent is one parsed LEEF line.
type LEEFEvent struct {
	Version                                  string // "1.0" or "2.0"
	Vendor, Product, ProductVersion, EventID string
	Delimiter                                rune
	Attrs                                    map[string]string
	Keys                                     []string
}

// ErrLEEF is wrapped by every ParseLEEF error.
var ErrLEEF = errors.New("not valid LEEF")

func leefErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrLEEF, fmt.Sprintf(format, a...))
}

// ParseLEEF parses one LEEF line (no syslog header, no line break). LEEF has no escape, so
// the parser rejects what the guide says to keep out: tab, pipe and caret in header fields,
// keys and values, any line break, and a value holding the delimiter (which shows up as a
// piece without "key="). Keys are single words; a key appears once.
func ParseLEEF(line string) (*LEEFEvent, error) {
	if !utf8.ValidString(line) {
		return nil, leefErr("invalid UTF-8")
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, leefErr("line break")
	}
	e := &LEEFEvent{Attrs: map[string]string{}}
	var rest string
	var ok bool
	switch {
	case strings.HasPrefix(line, "LEEF:2.0|"):
		e.Version, rest = "2.0", line[len("LEEF:2.0|"):]
	case strings.HasPrefix(line, "LEEF:1.0|"):
		e.Version, rest, e.Delimiter = "1.0", line[len("LEEF:1.0|"):], '\t'
	default:
		return nil, leefErr("no LEEF:1.0| or LEEF:2.0| prefix")
	}
	n := 4
	if e.Version == "2.0" {
		n = 5
	}
	fields := make([]string, n)
	for i := range fields {
		if fields[i], rest, ok = strings.Cut(rest, "|"); !ok {
			return nil, leefErr("header has fewer than %d fields", n)
		}
	}
	e.Vendor, e.Product, e.ProductVersion, e.EventID = fields[0], fields[1], fields[2], fields[3]
	for i, name := range []string{"Vendor", "Product", "Version", "EventID"} {
		if fields[i] == "" {
			return nil, leefErr("%s is empty", name)
		}
		if strings.ContainsAny(fields[i], "\t^") {
			return nil, leefErr("%s holds a tab or a caret", name)
		}
	}
	if c := utf8.RuneCountInString(e.EventID); c > 255 {
		return nil, leefErr("EventID has %d characters, over 255", c)
	}
	if e.Version == "2.0" {
		d, err := delimiter(fields[4])
		if err != nil {
			return nil, err
		}
		e.Delimiter = d
	}
	if rest == "" {
		return e, nil
	}
	for _, kv := range strings.Split(rest, string(e.Delimiter)) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, leefErr("%q is not key=value (a value holding the delimiter?)", clip(kv))
		}
		if !isLEEFKey(k) {
			return nil, leefErr("key %q is not a single word", k)
		}
		if strings.ContainsAny(v, "\t|^") {
			return nil, leefErr("value of %s holds a tab, a pipe or a caret", k)
		}
		if _, dup := e.Attrs[k]; dup {
			return nil, leefErr("key %q twice", k)
		}
		e.Attrs[k] = v
		e.Keys = append(e.Keys, k)
	}
	return e, e.checkPredefined()
}

// delimiter reads LEEF 2.0's delimiter field: one character, or its code in hex as xHH or
// 0xHH (1 to 4 hex digits).
func delimiter(f string) (rune, error) {
	if h, ok := strings.CutPrefix(f, "0x"); ok || strings.HasPrefix(f, "x") {
		if !ok {
			h = f[1:]
		}
		if len(h) >= 1 && len(h) <= 4 {
			if n, err := strconv.ParseUint(h, 16, 32); err == nil && n > 0 {
				return rune(n), nil
			}
		}
		if f != "x" {
			return 0, leefErr("delimiter %q is not 1-4 hex digits", f)
		}
	}
	if utf8.RuneCountInString(f) != 1 {
		return 0, leefErr("delimiter %q is not one character", f)
	}
	r, _ := utf8.DecodeRuneInString(f)
	if r == '=' || r == '|' || r == 0 || r == utf8.RuneError {
		// A NUL ends the line in C receivers; an invalid byte is no character at all.
		return 0, leefErr("delimiter %q", f)
	}
	return r, nil
}

func isLEEFKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkPredefined checks the values of QRadar's predefined keys that have a type or a limit.
func (e *LEEFEvent) checkPredefined() error {
	a := e.Attrs
	if v, ok := a["devTime"]; ok {
		if _, f := a["devTimeFormat"]; !f && (!isDigits(v) || (len(v) != 10 && len(v) != 13)) {
			return leefErr("devTime %q is not 10 or 13 digits and has no devTimeFormat", v)
		}
	}
	if v, ok := a["sev"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 10 {
			return leefErr("sev %q is not 1-10", v)
		}
	}
	for _, k := range []string{"src", "dst", "srcPreNAT", "dstPreNAT", "identSrc"} {
		if v, ok := a[k]; ok {
			if _, err := netip.ParseAddr(v); err != nil {
				return leefErr("%s %q is not an IP address", k, v)
			}
		}
	}
	for _, k := range []string{"srcPort", "dstPort", "srcBytes", "dstBytes", "srcPackets", "dstPackets"} {
		if v, ok := a[k]; ok && !isDigits(v) {
			return leefErr("%s %q is not a number", k, v)
		}
	}
	for _, k := range []string{"usrName", "identHostName"} {
		if n := utf8.RuneCountInString(a[k]); n > 255 {
			return leefErr("%s has %d characters, over 255", k, n)
		}
	}
	if _, ok := a["identHostName"]; ok {
		if _, src := a["identSrc"]; !src {
			return leefErr("identHostName without identSrc")
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
