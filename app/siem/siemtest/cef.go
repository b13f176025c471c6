// Package siemtest holds strict CEF and LEEF parsers for tests, written from the format
// specifications (the ArcSight CEF Implementation Standard, IBM's LEEF guide), not from this
// module's encoders: they accept what the specifications allow and reject what they forbid,
// so that an encoder's slip shows up as a parse error. The shipped binary does not link it.
package siemtest

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CEFEvent is one parsed CEF line. Ext holds the extension's values unescaped; Keys their
// order.
type CEFEvent struct {
	Version                                                 int
	Vendor, Product, DeviceVersion, ClassID, Name, Severity string
	Ext                                                     map[string]string
	Keys                                                    []string
}

// ErrCEF is wrapped by every ParseCEF error.
var ErrCEF = errors.New("not valid CEF")

// cefHeaderMax are the header limits, in characters, in header order after the version.
var cefHeaderMax = [...]struct {
	name  string
	limit int
}{{"Device Vendor", 63}, {"Device Product", 63}, {"Device Version", 31},
	{"Device Event Class ID", 1023}, {"Name", 512}}

// cefKeys are the extension keys the parser knows, with their limits in characters (0: no
// limit set by the standard, the value is typed instead). An unknown key is an error: a
// stray "word=" in an encoder's value shows up as one.
var cefKeys = map[string]int{
	"act": 63, "outcome": 63, "cat": 1023, "msg": 1023, "request": 1023,
	"dvchost": 100, "shost": 1023, "dhost": 1023, "suser": 1023, "duser": 1023, "suid": 1023,
	"duid": 1023, "sntdom": 255, "dntdom": 255, "fname": 1023, "filePath": 1023, "fileHash": 255,
	"deviceExternalId": 255, "externalId": 40, "sourceServiceName": 1023,
	"sourceDnsDomain": 255, "destinationDnsDomain": 255, "flexString1": 1023,
	"flexString1Label": 128, "flexString2": 1023, "flexString2Label": 128,
	"rt": 0, "start": 0, "end": 0, "deviceCustomDate1": 0, "deviceCustomDate2": 0,
	"src": 0, "dst": 0, "spt": 0, "dpt": 0, "proto": 31,
}

func init() {
	for i := 1; i <= 6; i++ {
		cefKeys["cs"+strconv.Itoa(i)] = 4000
		cefKeys["cs"+strconv.Itoa(i)+"Label"] = 1023
	}
	for i := 1; i <= 3; i++ {
		cefKeys["cn"+strconv.Itoa(i)] = 0
		cefKeys["cn"+strconv.Itoa(i)+"Label"] = 1023
	}
	for i := 1; i <= 4; i++ {
		cefKeys["c6a"+strconv.Itoa(i)] = 0
		cefKeys["c6a"+strconv.Itoa(i)+"Label"] = 1023
	}
}

func cefErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCEF, fmt.Sprintf(format, a...))
}

// ParseCEF parses one CEF line (no syslog header, no line break).
func ParseCEF(line string) (*CEFEvent, error) {
	if !utf8.ValidString(line) {
		return nil, cefErr("invalid UTF-8")
	}
	rest, ok := strings.CutPrefix(line, "CEF:")
	if !ok {
		return nil, cefErr("no CEF: prefix")
	}
	v, rest, ok := strings.Cut(rest, "|")
	if !ok || (v != "0" && v != "1") {
		return nil, cefErr("version %q is not 0 or 1", v)
	}
	e := &CEFEvent{Ext: map[string]string{}}
	e.Version, _ = strconv.Atoi(v)
	var fields [6]string
	for i := range fields {
		var err error
		fields[i], rest, err = headerField(rest)
		if err != nil {
			return nil, err
		}
		if i < len(cefHeaderMax) {
			h := cefHeaderMax[i]
			if n := utf8.RuneCountInString(fields[i]); n > h.limit {
				return nil, cefErr("%s has %d characters, over %d", h.name, n, h.limit)
			}
			if fields[i] == "" && i != 4 {
				return nil, cefErr("%s is empty", h.name)
			}
		}
	}
	e.Vendor, e.Product, e.DeviceVersion, e.ClassID, e.Name, e.Severity =
		fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	if !validSeverity(e.Severity) {
		return nil, cefErr("severity %q is neither 0-10 nor Unknown, Low, Medium, High, Very-High", e.Severity)
	}
	if err := e.parseExtension(rest); err != nil {
		return nil, err
	}
	return e, nil
}

// headerField reads one header field up to its unescaped pipe. Only \| and \\ are escapes
// there; a line break cannot be.
func headerField(s string) (field, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '|':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) || (s[i+1] != '|' && s[i+1] != '\\') {
				return "", "", cefErr("bad escape in header at %q", clip(s[i:]))
			}
			i++
			b.WriteByte(s[i])
		case '\n', '\r':
			return "", "", cefErr("line break in header")
		default:
			b.WriteByte(c)
		}
	}
	return "", "", cefErr("header ends without its pipe")
}

func validSeverity(s string) bool {
	switch s {
	case "Unknown", "Low", "Medium", "High", "Very-High":
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 10 && strconv.Itoa(n) == s
}

// parseExtension reads key=value pairs. A value runs to the space before the next key=; so an
// unescaped = inside a value is either that boundary (a space, then a key) or an error. The
// last value loses its trailing spaces, as the standard says receivers do.
func (e *CEFEvent) parseExtension(s string) error {
	if s == "" {
		return nil
	}
	key, i, err := extKey(s, 0)
	if err != nil {
		return err
	}
	var val strings.Builder
	space, spaceLen := -1, 0 // the last unescaped space in the value: raw index, decoded length
	for ; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return cefErr("%s ends with a lone backslash", key)
			}
			i++
			switch s[i] {
			case '\\', '=':
				val.WriteByte(s[i])
			case 'n':
				val.WriteByte('\n')
			case 'r':
				val.WriteByte('\r')
			default:
				return cefErr("unknown escape \\%c in %s", s[i], key)
			}
			continue
		case '\n', '\r':
			return cefErr("raw line break in %s", key)
		case ' ':
			space, spaceLen = i, val.Len()
		case '=':
			k := s[space+1 : i]
			if space < 0 || !isKey(k) {
				return cefErr("unescaped = in the value of %s", key)
			}
			if err := e.set(key, val.String()[:spaceLen]); err != nil {
				return err
			}
			key = k
			val.Reset()
			space = -1
			continue
		}
		val.WriteByte(c)
	}
	return e.set(key, strings.TrimRight(val.String(), " "))
}

func extKey(s string, i int) (string, int, error) {
	j := strings.IndexByte(s[i:], '=')
	if j < 0 || !isKey(s[i:i+j]) {
		return "", 0, cefErr("extension does not start with key= at %q", clip(s[i:]))
	}
	return s[i : i+j], i + j + 1, nil
}

func isKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// set checks one pair against the dictionary: known key, once, within its limit, and of its
// type.
func (e *CEFEvent) set(k, v string) error {
	limit, ok := cefKeys[k]
	if !ok {
		return cefErr("unknown key %q", k)
	}
	if _, dup := e.Ext[k]; dup {
		return cefErr("key %q twice", k)
	}
	if n := utf8.RuneCountInString(v); limit > 0 && n > limit {
		return cefErr("%s has %d characters, over %d", k, n, limit)
	}
	if err := cefType(k, v); err != nil {
		return err
	}
	e.Ext[k] = v
	e.Keys = append(e.Keys, k)
	return nil
}

// cefTimeLayouts are the standard's non-numeric time forms: MMM dd [yyyy] HH:mm:ss[.SSS][ zzz].
var cefTimeLayouts = []string{"Jan 02 2006 15:04:05", "Jan 02 2006 15:04:05.000",
	"Jan 02 15:04:05", "Jan 02 15:04:05.000", "Jan 02 2006 15:04:05 MST",
	"Jan 02 2006 15:04:05.000 MST", "Jan 02 15:04:05 MST", "Jan 02 15:04:05.000 MST"}

func cefType(k, v string) error {
	switch {
	case v == "":
		return nil
	case k == "rt" || k == "start" || k == "end" || strings.HasPrefix(k, "deviceCustomDate"):
		if _, err := strconv.ParseUint(v, 10, 64); err == nil {
			return nil
		}
		for _, l := range cefTimeLayouts {
			if _, err := time.Parse(l, v); err == nil {
				return nil
			}
		}
		return cefErr("%s %q is neither epoch milliseconds nor MMM dd [yyyy] HH:mm:ss", k, v)
	case k == "src" || k == "dst":
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is4() {
			return cefErr("%s %q is not an IPv4 address", k, v)
		}
	case strings.HasPrefix(k, "c6a") && !strings.HasSuffix(k, "Label"):
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return cefErr("%s %q is not an IPv6 address", k, v)
		}
	case (strings.HasPrefix(k, "cn") && !strings.HasSuffix(k, "Label")) || k == "spt" || k == "dpt":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return cefErr("%s %q is not an integer", k, v)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}
