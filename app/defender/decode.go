package defender

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// The page walker: the page's grammar ({"@odata.context": …, "value": [alert, …]}) over the
// buffer in decodebuf.go, handing each alert to jsonvalid.go's parseAlert.

// decodeError is a reply the decoder cannot read as an Alert API page. It names the record.
type decodeError struct {
	Offset int64  // byte offset in the reply
	Record int    // index in "value", -1 outside it
	ID     string // the alert's id when known
	Msg    string
	Noun   string // what a record is called ("" is "alert")
}

func (e *decodeError) Error() string {
	noun := e.Noun
	if noun == "" {
		noun = "alert"
	}
	s := noun + " page"
	if e.Record >= 0 {
		s += fmt.Sprintf(", %s #%d", noun, e.Record)
		if e.ID != "" {
			s += fmt.Sprintf(" (id %q)", e.ID)
		}
	}
	return fmt.Sprintf("%s, byte %d: %s", s, e.Offset, e.Msg)
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// MaxRecord bounds one alert (or any other value) held in memory, in bytes: far above any
// real alert. The sourcetype's TRUNCATE in default/props.conf is this number, so that Splunk
// never cuts an alert the reader passed (appcheck holds the two equal).
const MaxRecord = 64 << 20

const maxRecord = MaxRecord

// pageDecoder reads {"@odata.context": …, "value": [alert, …]} as a stream: the reply is
// never held whole, only the alert being handed on. Reuse one decoder across pages.
type pageDecoder struct {
	dl   *dialect // the record's field names
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of valid data in buf
	base int64 // reply offset of buf[0]
	eof  bool
	rerr error
	// more: the reply named a next page (@odata.nextLink). Graph may end a page short of
	// $top with more to come, so such a reply is never taken as the whole of its query.
	more bool
	next string // the link itself, when it is a string
}

func newPageDecoder() *pageDecoder { return newDecoder(endpointAlerts) }

func newDecoder(dl *dialect) *pageDecoder {
	return &pageDecoder{dl: dl, buf: make([]byte, 256<<10)}
}

// fields are what the drain needs of an alert (named by the dialect).
type fields struct {
	id      string
	lut     time.Time // the update time (lastUpdateTime)
	created time.Time // the creation time (alertCreationTime); zero when absent or unreadable
}

// decode reads one page and calls fn for each alert with its exact bytes (valid only during
// the call), its id, lastUpdateTime and alertCreationTime. It returns the number of alerts. A reply that ends
// early gives io.ErrUnexpectedEOF; bad JSON gives *decodeError; fn's error is returned as is.
func (d *pageDecoder) decode(r io.Reader, fn func(raw []byte, f fields) error) (int, error) {
	d.r, d.pos, d.end, d.base, d.eof, d.rerr, d.more, d.next = r, 0, 0, 0, false, nil, false, ""
	defer func() { d.r = nil }()
	n := 0
	if err := d.expect('{', -1); err != nil {
		return 0, err
	}
	sawValue := false
	first := true
	for {
		c, err := d.nonSpace()
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
		} else {
			if key == "@odata.nextLink" {
				c, err := d.nonSpace()
				if err != nil {
					return n, err
				}
				d.more = c != 'n' // a link, not null
				if c == '"' {
					if d.next, err = d.readString("a bad @odata.nextLink"); err != nil {
						return n, err
					}
				} else if err := d.skipValue(); err != nil {
					return n, err
				}
			} else if err := d.skipValue(); err != nil {
				return n, err
			}
		}
		c, err = d.nonSpace()
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
	c, err := d.nonSpace()
	if err != nil {
		return 0, err
	}
	if c == ']' {
		d.pos++
		return 0, nil
	}
	for {
		c, err := d.nonSpace()
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
		f, msg := parseAlert(raw, d.dl)
		if msg != "" {
			return n, &decodeError{Offset: d.base + int64(d.pos-endRel), Record: n, ID: f.id, Msg: msg, Noun: d.dl.noun}
		}
		if err := fn(raw, f); err != nil {
			return n, err
		}
		n++
		c, err = d.nonSpace()
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

func (d *pageDecoder) readKey() (string, error) {
	c, err := d.nonSpace()
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", d.errAt(-1, fmt.Sprintf("want a member name, found %q", c))
	}
	return d.readString("bad member name")
}

// readString reads the JSON string at d.pos; bad names the fault if it is not one.
func (d *pageDecoder) readString(bad string) (string, error) {
	size, err := d.spanString()
	if err != nil {
		return "", err
	}
	raw := d.buf[d.pos-size : d.pos]
	if end, esc, msg := validString(raw, 0); msg != "" || end != len(raw) {
		return "", d.errAt(-1, bad)
	} else if esc {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", d.errAt(-1, bad)
		}
		return s, nil
	}
	return string(raw[1 : len(raw)-1]), nil
}

// skipValue consumes and validates a value we do not use (e.g. "@odata.context").
func (d *pageDecoder) skipValue() error {
	c, err := d.nonSpace()
	if err != nil {
		return err
	}
	var size int
	switch c {
	case '{', '[':
		size, err = d.scanComposite(-1)
	case '"':
		size, err = d.spanString()
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

// DecodePage streams one Alert API page and calls fn for each alert with its exact bytes
// (valid only during the call), id and lastUpdateTime. For tools (the benchmark's raw relay);
// the client itself uses ReadWindow.
func DecodePage(r io.Reader, fn func(raw []byte, id string, lastUpdate time.Time) error) (int, error) {
	return newPageDecoder().decode(r, func(raw []byte, f fields) error { return fn(raw, f.id, f.lut) })
}
