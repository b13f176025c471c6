package checkpoint

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// appendJSON encodes st as json.Marshal would, without reflection: a pump saves after every
// confirmed batch, and the delivered keys of a busy overlap number in the thousands.
func (st *State) appendJSON(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(st.Version), 10)
	b = append(b, `,"watermark":`...)
	b = appendTime(b, st.Watermark)
	b = append(b, `,"delivered":`...)
	if st.Delivered == nil {
		b = append(b, "null"...)
	} else {
		b = appendKeys(b, st.Delivered)
	}
	if w := st.Window; w != nil {
		b = append(b, `,"window":{"from":`...)
		b = appendTime(b, w.From)
		b = append(b, `,"to":`...)
		b = appendTime(b, w.To)
		if len(w.Position) > 0 {
			b = append(b, `,"position":`...)
			b = append(b, w.Position...)
		}
		b = append(b, '}')
	}
	if st.Held != nil {
		h, _ := json.Marshal(st.Held) // rare: only while refused alerts are held
		b = append(b, `,"held":`...)
		b = append(b, h...)
	}
	if len(st.Pending) > 0 {
		b = append(b, `,"pending":[`...)
		for i := range st.Pending {
			if i > 0 {
				b = append(b, ',')
			}
			b = st.Pending[i].AppendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"updated":`...)
	b = appendTime(b, st.Updated)
	return append(b, '}')
}

// AppendJSON encodes a pending batch as json.Marshal would (Encoded, if the batch has it):
// the pump saves them with every checkpoint while batches await confirmation.
func (e *Pending) AppendJSON(b []byte) []byte {
	if e.Marshaled && e.Encoded != nil {
		return append(b, e.Encoded...)
	}
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(e.N), 10)
	raw := appendRaw
	if e.Marshaled {
		raw = func(b []byte, r json.RawMessage) []byte { return append(b, r...) }
	}
	if len(e.Position) > 0 {
		b = append(b, `,"position":`...)
		b = raw(b, e.Position)
	}
	if len(e.Keys) > 0 {
		b = append(b, `,"keys":`...)
		b = appendKeys(b, e.Keys)
	}
	if len(e.Tickets) > 0 {
		b = append(b, `,"tickets":[`...)
		for i, t := range e.Tickets {
			if i > 0 {
				b = append(b, ',')
			}
			b = raw(b, t)
		}
		b = append(b, ']')
	}
	if e.Confirmed {
		b = append(b, `,"confirmed":true`...)
	}
	return append(b, '}')
}

func appendKeys(b []byte, keys []Key) []byte {
	b = append(b, '[')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendString(b, k.ID)
		b = append(b, ',')
		b = appendTime(b, k.LastUpdate.UTC())
		b = append(b, ']')
	}
	return append(b, ']')
}

// appendRaw writes a sink's opaque JSON as encoding/json writes a json.RawMessage: compacted,
// with <, > and & escaped. JSON that is not valid (or empty) is written as null rather than
// break the document: the batch it belongs to is then sent again, never lost.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if compactSafe(raw) && json.Valid(raw) {
		return append(b, raw...) // what Compact and HTMLEscape would leave as it is
	}
	var c bytes.Buffer
	if len(raw) == 0 || json.Compact(&c, raw) != nil {
		return append(b, "null"...)
	}
	var e bytes.Buffer
	json.HTMLEscape(&e, c.Bytes())
	return append(b, e.Bytes()...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = appendRFC3339Nano(b, t)
	return append(b, '"')
}

// appendRFC3339Nano writes t as t.AppendFormat(b, time.RFC3339Nano) does, by hand for a UTC
// time of years 0-9999 (every key of every save is formatted: a third of a save's cost), and
// through AppendFormat otherwise.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if t.Location() != time.UTC || year < 0 || year > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var f [9]byte
		for i := 8; i >= 0; i-- {
			f[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 9
		for f[n-1] == '0' {
			n--
		}
		b = append(append(b, '.'), f[:n]...)
	}
	return append(b, 'Z')
}

// appendString quotes s as JSON does (alert ids are plain ASCII; anything else takes the
// careful path).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// compactSafe reports whether raw has nothing json.Compact or json.HTMLEscape would change:
// no whitespace, no <, > or &, and no U+2028 or U+2029 (their UTF-8 starts with 0xE2). The
// positions and tickets a pump saves are written compact by their own encoders, so the
// checkpoint copies them as they are instead of compacting each one at every save.
func compactSafe(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			return false
		}
	}
	return len(raw) > 0
}
