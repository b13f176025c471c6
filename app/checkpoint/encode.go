package checkpoint

import (
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
		b = append(b, '[')
		for i, k := range st.Delivered {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendString(b, k.ID)
			b = append(b, ',')
			b = appendTime(b, k.LastUpdate.UTC())
			b = append(b, ']')
		}
		b = append(b, ']')
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
	b = append(b, `,"updated":`...)
	b = appendTime(b, st.Updated)
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
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
