package defender

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON validator: it checks one value held whole in memory (an alert, or a member the
// walker skips) and reads the fields the drain needs, allocating only for escaped strings.

// parseAlert checks that raw is one valid JSON object and returns its top-level id, update
// time and creation time, as the dialect names them ("id", "lastUpdateTime" and
// "alertCreationTime" for the Alert API). msg is empty when all is well.
func parseAlert(raw []byte, dl *dialect) (f fields, msg string) {
	i := 1 // raw[0] == '{'
	var idRaw, lutRaw, crRaw []byte
	var idEsc, lutEsc, crEsc bool
	i = skipWS(raw, i)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			if i >= len(raw) || raw[i] != '"' {
				return f, "want a member name"
			}
			kEnd, kEsc, m := validString(raw, i)
			if m != "" {
				return f, m
			}
			key := memberName(raw[i:kEnd], kEsc)
			i = skipWS(raw, kEnd)
			if i >= len(raw) || raw[i] != ':' {
				return f, "want : after a member name"
			}
			i = skipWS(raw, i+1)
			vStart := i
			var vEnd int
			var vEsc bool
			if i < len(raw) && raw[i] == '"' {
				vEnd, vEsc, m = validString(raw, i)
			} else {
				vEnd, m = validValue(raw, i, 1)
			}
			if m != "" {
				return f, m
			}
			switch string(key) {
			case dl.id:
				if idRaw == nil {
					idRaw, idEsc = raw[vStart:vEnd], vEsc
				}
			case dl.updated:
				if lutRaw == nil {
					lutRaw, lutEsc = raw[vStart:vEnd], vEsc
				}
			case dl.created:
				if crRaw == nil {
					crRaw, crEsc = raw[vStart:vEnd], vEsc
				}
			}
			i = skipWS(raw, vEnd)
			if i >= len(raw) {
				return f, "alert object not closed"
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return f, "want , or } in the alert"
			}
			i = skipWS(raw, i+1)
		}
	}
	if i != len(raw) {
		return f, "bad alert object"
	}
	noun := dl.recordNoun()
	if dl.idNumber {
		id, msg := numberID(idRaw, noun, dl.id)
		if msg != "" {
			return f, msg
		}
		f.id = id
	} else {
		if idRaw == nil || idRaw[0] != '"' {
			return f, `the ` + noun + ` has no "` + dl.id + `" string`
		}
		id, ok := unquote(idRaw, idEsc)
		if !ok || id == "" {
			return f, `the ` + noun + `'s "` + dl.id + `" is empty or unreadable`
		}
		f.id = id
	}
	if lutRaw == nil || lutRaw[0] != '"' {
		return f, `the ` + noun + ` has no "` + dl.updated + `" string`
	}
	t, ok := timeValue(lutRaw, lutEsc)
	if !ok {
		return f, fmt.Sprintf(`the %s's "%s" %s is not a UTC ISO-8601 time`, noun, dl.updated, lutRaw)
	}
	f.lut = t
	if crRaw != nil && crRaw[0] == '"' {
		f.created, _ = timeValue(crRaw, crEsc)
	}
	return f, ""
}

// numberID reads an id sent as a JSON number (the XDR incidentId, a long): a whole number
// from 0 to 2^63-1, written without sign, fraction or exponent. Its key is those digits, which
// JSON's grammar (no leading zeros) makes the one decimal form of the number.
func numberID(raw []byte, noun, name string) (string, string) {
	if raw == nil || raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' || raw[0] == 'n' {
		return "", `the ` + noun + ` has no "` + name + `" number`
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return "", fmt.Sprintf(`the %s's "%s" %.40s is not a whole number from 0 up`, noun, name, raw)
		}
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		return "", fmt.Sprintf(`the %s's "%s" %.40s is too large for a 64-bit id`, noun, name, raw)
	}
	return string(raw), ""
}

// timeValue reads a JSON string holding a time, without allocating in the usual case.
func timeValue(raw []byte, esc bool) (time.Time, bool) {
	if !esc {
		if t, ok := parseZ(raw[1 : len(raw)-1]); ok {
			return t, true
		}
	}
	s, ok := unquote(raw, esc)
	if !ok {
		return time.Time{}, false
	}
	t, err := parseTime(s)
	return t, err == nil
}

// unquote reads the JSON string raw (esc: it has a backslash) as encoding/json does, bytes
// that are not UTF-8 becoming U+FFFD, so that an id reads the same here, in the checkpoint
// and in Splunk.
func unquote(raw []byte, esc bool) (string, bool) {
	if !esc && utf8.Valid(raw[1:len(raw)-1]) {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// memberName returns a member's name from its quoted bytes: the bytes between the quotes, or,
// when the name holds an escape (or bytes that are not UTF-8), the name as encoding/json reads
// it, so that "alert\u0049d" is the same name as "alertId" here as it is to every other reader.
// A name that cannot be read comes back as its quoted bytes, which match no name looked for.
func memberName(quoted []byte, esc bool) []byte {
	if !esc {
		return quoted[1 : len(quoted)-1]
	}
	if s, ok := unquote(quoted, true); ok {
		return []byte(s)
	}
	return quoted
}

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// strPlain marks bytes that may stand in a JSON string without further thought.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validString checks the JSON string starting at b[i] == '"' and returns the index after it
// and whether it holds escapes (then only json.Unmarshal reads it right).
func validString(b []byte, i int) (end int, esc bool, msg string) {
	i++
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, false, "string not closed"
		}
		switch b[i] {
		case '"':
			return i + 1, esc, ""
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, "string not closed"
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, false, `bad \u escape in a string`
				}
				i += 6
			default:
				return 0, false, "bad escape in a string"
			}
		default:
			return 0, false, "control character in a string"
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validValue checks the JSON value starting at b[i] and returns the index after it.
func validValue(b []byte, i, depth int) (int, string) {
	if i >= len(b) {
		return 0, "value expected"
	}
	switch c := b[i]; {
	case c == '"':
		end, _, m := validString(b, i)
		return end, m
	case c == '{':
		if depth >= maxDepth {
			return 0, "nested too deeply"
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, ""
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, "want a member name"
			}
			end, _, m := validString(b, i)
			if m != "" {
				return 0, m
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, "want : after a member name"
			}
			if i, m = validValue(b, skipWS(b, i+1), depth+1); m != "" {
				return 0, m
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, "object not closed"
			}
			if b[i] == '}' {
				return i + 1, ""
			}
			if b[i] != ',' {
				return 0, "want , or } in an object"
			}
			i = skipWS(b, i+1)
		}
	case c == '[':
		if depth >= maxDepth {
			return 0, "nested too deeply"
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, ""
		}
		for {
			var m string
			if i, m = validValue(b, i, depth+1); m != "" {
				return 0, m
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, "array not closed"
			}
			if b[i] == ']' {
				return i + 1, ""
			}
			if b[i] != ',' {
				return 0, "want , or ] in an array"
			}
			i = skipWS(b, i+1)
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return number(b, i)
	default:
		return 0, fmt.Sprintf("unexpected %q", c)
	}
}

func literal(b []byte, i int, lit string) (int, string) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), ""
	}
	return 0, "bad literal"
}

func number(b []byte, i int) (int, string) {
	if b[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		return 0, "bad number"
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return 0, "bad number"
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return 0, "bad number"
		}
	}
	return i, ""
}
