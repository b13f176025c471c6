package defender

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// DecodeError is a reply the decoder cannot read as an Alert API page. It names the record.
type DecodeError struct {
	Offset int64  // byte offset in the reply
	Record int    // index in "value", -1 outside it
	ID     string // the alert's id when known
	Msg    string
}

func (e *DecodeError) Error() string {
	s := "alert page"
	if e.Record >= 0 {
		s += fmt.Sprintf(", alert #%d", e.Record)
		if e.ID != "" {
			s += fmt.Sprintf(" (id %q)", e.ID)
		}
	}
	return fmt.Sprintf("%s, byte %d: %s", s, e.Offset, e.Msg)
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// maxRecord bounds one alert (or any other value) held in memory: far above any real alert.
const maxRecord = 64 << 20

// pageDecoder reads {"@odata.context": …, "value": [alert, …]} as a stream: the reply is
// never held whole, only the alert being handed on. Reuse one decoder across pages.
type pageDecoder struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of valid data in buf
	base int64 // reply offset of buf[0]
	eof  bool
	rerr error
}

func newPageDecoder() *pageDecoder { return &pageDecoder{buf: make([]byte, 256<<10)} }

// fields are what the drain needs of an alert.
type fields struct {
	id      string
	lut     time.Time
	created time.Time // alertCreationTime; zero when absent or unreadable
}

// decode reads one page and calls fn for each alert with its exact bytes (valid only during
// the call), its id, lastUpdateTime and alertCreationTime. It returns the number of alerts. A reply that ends
// early gives io.ErrUnexpectedEOF; bad JSON gives *DecodeError; fn's error is returned as is.
func (d *pageDecoder) decode(r io.Reader, fn func(raw []byte, f fields) error) (int, error) {
	d.r, d.pos, d.end, d.base, d.eof, d.rerr = r, 0, 0, 0, false, nil
	defer func() { d.r = nil }()
	n := 0
	if err := d.expect('{', -1); err != nil {
		return 0, err
	}
	sawValue := false
	first := true
	for {
		c, err := d.nonSpace(-1)
		if err != nil {
			return n, err
		}
		if c == '}' && first {
			d.pos++
			break
		}
		first = false
		key, err := d.readKey()
		if err != nil {
			return n, err
		}
		if err := d.expect(':', -1); err != nil {
			return n, err
		}
		if key == "value" {
			if sawValue {
				return n, d.errAt(-1, `"value" appears twice`)
			}
			sawValue = true
			if n, err = d.values(fn); err != nil {
				return n, err
			}
		} else if err := d.skipValue(); err != nil {
			return n, err
		}
		c, err = d.nonSpace(-1)
		if err != nil {
			return n, err
		}
		d.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			return n, d.errAt(-1, fmt.Sprintf("want , or } after a member, found %q", c))
		}
	}
	// Only white space may follow the page.
	for {
		if d.pos == d.end {
			if err := d.fill(d.pos); err != nil {
				if err == io.ErrUnexpectedEOF {
					break
				}
				return n, err
			}
		}
		if !isSpace(d.buf[d.pos]) {
			return n, d.errAt(-1, "data after the end of the page")
		}
		d.pos++
	}
	if !sawValue {
		return n, d.errAt(-1, `the page has no "value" array`)
	}
	return n, nil
}

func (d *pageDecoder) values(fn func([]byte, fields) error) (int, error) {
	if err := d.expect('[', -1); err != nil {
		return 0, err
	}
	n := 0
	c, err := d.nonSpace(0)
	if err != nil {
		return 0, err
	}
	if c == ']' {
		d.pos++
		return 0, nil
	}
	for {
		c, err := d.nonSpace(n)
		if err != nil {
			return n, err
		}
		if c != '{' {
			return n, d.errAt(n, fmt.Sprintf("an alert must be a JSON object, found %q", c))
		}
		endRel, err := d.scanComposite(n)
		if err != nil {
			return n, err
		}
		// scanComposite may have moved the data; the record starts endRel bytes before d.pos.
		raw := d.buf[d.pos-endRel : d.pos]
		f, msg := parseAlert(raw)
		if msg != "" {
			return n, &DecodeError{Offset: d.base + int64(d.pos-endRel), Record: n, ID: f.id, Msg: msg}
		}
		if err := fn(raw, f); err != nil {
			return n, err
		}
		n++
		c, err = d.nonSpace(n)
		if err != nil {
			return n, err
		}
		d.pos++
		if c == ']' {
			return n, nil
		}
		if c != ',' {
			return n, d.errAt(n, fmt.Sprintf("want , or ] after an alert, found %q", c))
		}
	}
}

// fill reads more data, keeping buf[keep:end]; d.pos stays on the same byte. At the end of
// the reply it returns io.ErrUnexpectedEOF (the caller decides whether that is fine).
func (d *pageDecoder) fill(keep int) error {
	if d.eof {
		if d.rerr != nil {
			return d.rerr
		}
		return io.ErrUnexpectedEOF
	}
	if keep > 0 {
		copy(d.buf, d.buf[keep:d.end])
		d.pos -= keep
		d.end -= keep
		d.base += int64(keep)
	}
	if d.end == len(d.buf) {
		if len(d.buf) >= maxRecord {
			return d.errAt(-1, fmt.Sprintf("a single value is larger than %d MiB", maxRecord>>20))
		}
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for {
		m, err := d.r.Read(d.buf[d.end:])
		d.end += m
		if err != nil {
			d.eof = true
			if err != io.EOF {
				d.rerr = err
			}
			if m > 0 {
				return nil
			}
			if d.rerr != nil {
				return d.rerr
			}
			return io.ErrUnexpectedEOF
		}
		if m > 0 {
			return nil
		}
	}
}

// nonSpace skips white space and returns the next byte without consuming it.
func (d *pageDecoder) nonSpace(rec int) (byte, error) {
	for {
		for d.pos < d.end {
			if c := d.buf[d.pos]; !isSpace(c) {
				return c, nil
			}
			d.pos++
		}
		if err := d.fill(d.pos); err != nil {
			return 0, err
		}
	}
}

func (d *pageDecoder) expect(want byte, rec int) error {
	c, err := d.nonSpace(rec)
	if err != nil {
		return err
	}
	if c != want {
		return d.errAt(rec, fmt.Sprintf("want %q, found %q", want, c))
	}
	d.pos++
	return nil
}

func (d *pageDecoder) readKey() (string, error) {
	c, err := d.nonSpace(-1)
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", d.errAt(-1, fmt.Sprintf("want a member name, found %q", c))
	}
	size, err := d.scanString(-1)
	if err != nil {
		return "", err
	}
	raw := d.buf[d.pos-size : d.pos]
	if end, esc, msg := scanString(raw, 0); msg != "" || end != len(raw) {
		return "", d.errAt(-1, "bad member name")
	} else if esc {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", d.errAt(-1, "bad member name")
		}
		return s, nil
	}
	return string(raw[1 : len(raw)-1]), nil
}

// skipValue consumes and validates a value we do not use (e.g. "@odata.context").
func (d *pageDecoder) skipValue() error {
	c, err := d.nonSpace(-1)
	if err != nil {
		return err
	}
	var size int
	switch c {
	case '{', '[':
		size, err = d.scanComposite(-1)
	case '"':
		size, err = d.scanString(-1)
	default:
		size, err = d.scanScalar()
	}
	if err != nil {
		return err
	}
	raw := d.buf[d.pos-size : d.pos]
	if end, msg := validValue(raw, 0, 0); msg != "" || end != len(raw) {
		if msg == "" {
			msg = "bad value"
		}
		return d.errAt(-1, msg)
	}
	return nil
}

// scanComposite moves d.pos past the object or array at d.pos, keeping all its bytes in the
// buffer, and returns its length. It only tracks strings and nesting; parseAlert or
// validValue checks the grammar afterwards.
func (d *pageDecoder) scanComposite(rec int) (int, error) {
	start := d.pos
	depth := 0
	i := d.pos
	for {
		if i == d.end {
			off := i - start
			if err := d.fill(start); err != nil {
				return 0, err
			}
			start, i = d.pos, d.pos+off
			continue
		}
		switch d.buf[i] {
		case '{', '[':
			depth++
			if depth > maxDepth {
				return 0, d.errAt(rec, "nested too deeply")
			}
			i++
		case '}', ']':
			depth--
			i++
			if depth == 0 {
				d.pos = i
				return i - start, nil
			}
		case '"':
			// Find the closing quote: one not preceded by an odd run of backslashes.
			j := i + 1
			for {
				k := bytes.IndexByte(d.buf[j:d.end], '"')
				if k < 0 {
					offI, offJ := i-start, d.end-start
					if err := d.fill(start); err != nil {
						return 0, err
					}
					start = d.pos
					i, j = start+offI, start+offJ
					continue
				}
				q := j + k
				bs := 0
				for p := q - 1; p > i && d.buf[p] == '\\'; p-- {
					bs++
				}
				j = q + 1
				if bs%2 == 0 {
					break
				}
			}
			i = j
		default:
			i++
		}
	}
}

// scanString moves d.pos past the string at d.pos and returns its length (quotes included).
func (d *pageDecoder) scanString(rec int) (int, error) {
	start := d.pos
	j := start + 1
	for {
		k := bytes.IndexByte(d.buf[j:d.end], '"')
		if k < 0 {
			off := d.end - start
			if err := d.fill(start); err != nil {
				return 0, err
			}
			start = d.pos
			j = start + off
			continue
		}
		q := j + k
		bs := 0
		for p := q - 1; p > start && d.buf[p] == '\\'; p-- {
			bs++
		}
		j = q + 1
		if bs%2 == 0 {
			d.pos = j
			return j - start, nil
		}
	}
}

// scanScalar moves d.pos past a number or literal and returns its length.
func (d *pageDecoder) scanScalar() (int, error) {
	start := d.pos
	i := start
	for {
		if i == d.end {
			off := i - start
			if err := d.fill(start); err != nil {
				return 0, err
			}
			start, i = d.pos, d.pos+off
			continue
		}
		switch d.buf[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			d.pos = i
			return i - start, nil
		}
		i++
	}
}

func (d *pageDecoder) errAt(rec int, msg string) error {
	return &DecodeError{Offset: d.base + int64(d.pos), Record: rec, Msg: msg}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseAlert checks that raw is one valid JSON object and returns its top-level "id",
// "lastUpdateTime" and "alertCreationTime". msg is empty when all is well.
func parseAlert(raw []byte) (f fields, msg string) {
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
			kEnd, kEsc, m := scanString(raw, i)
			if m != "" {
				return f, m
			}
			key := raw[i+1 : kEnd-1]
			i = skipWS(raw, kEnd)
			if i >= len(raw) || raw[i] != ':' {
				return f, "want : after a member name"
			}
			i = skipWS(raw, i+1)
			vStart := i
			var vEnd int
			var vEsc bool
			if i < len(raw) && raw[i] == '"' {
				vEnd, vEsc, m = scanString(raw, i)
			} else {
				vEnd, m = validValue(raw, i, 1)
			}
			if m != "" {
				return f, m
			}
			if !kEsc {
				switch string(key) {
				case "id":
					if idRaw == nil {
						idRaw, idEsc = raw[vStart:vEnd], vEsc
					}
				case "lastUpdateTime":
					if lutRaw == nil {
						lutRaw, lutEsc = raw[vStart:vEnd], vEsc
					}
				case "alertCreationTime":
					if crRaw == nil {
						crRaw, crEsc = raw[vStart:vEnd], vEsc
					}
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
	if idRaw == nil || idRaw[0] != '"' {
		return f, `the alert has no "id" string`
	}
	id, ok := unquote(idRaw, idEsc)
	if !ok || id == "" {
		return f, `the alert's "id" is empty or unreadable`
	}
	f.id = id
	if lutRaw == nil || lutRaw[0] != '"' {
		return f, `the alert has no "lastUpdateTime" string`
	}
	t, ok := timeValue(lutRaw, lutEsc)
	if !ok {
		return f, fmt.Sprintf(`the alert's "lastUpdateTime" %s is not a UTC ISO-8601 time`, lutRaw)
	}
	f.lut = t
	if crRaw != nil && crRaw[0] == '"' {
		f.created, _ = timeValue(crRaw, crEsc)
	}
	return f, ""
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
	t, err := ParseTime(s)
	return t, err == nil
}

func unquote(raw []byte, esc bool) (string, bool) {
	if !esc {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
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

// scanString checks the string starting at b[i] == '"' and returns the index after it.
func scanString(b []byte, i int) (end int, esc bool, msg string) {
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
		end, _, m := scanString(b, i)
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
			end, _, m := scanString(b, i)
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

// DecodePage streams one Alert API page and calls fn for each alert with its exact bytes
// (valid only during the call), id and lastUpdateTime. For tools (the benchmark's raw relay);
// the client itself uses ReadWindow.
func DecodePage(r io.Reader, fn func(raw []byte, id string, lastUpdate time.Time) error) (int, error) {
	return newPageDecoder().decode(r, func(raw []byte, f fields) error { return fn(raw, f.id, f.lut) })
}
