package defender

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzPosition: a saved position (checkpoint input) either does not parse, or writes back to
// what it reads again as, and resuming from it never panics: it is accepted or refused with an error.
func FuzzPosition(f *testing.F) {
	f.Add([]byte(`{"page":{"upper":"2026-03-01T10:00:00Z","inclusive":true,"done":["a"]},"at":{"upper":"2026-03-01T09:00:00Z"}}`))
	f.Add([]byte(`{"page":{"upper":"2026-03-01T10:00:00Z","inclusive":true},"at":{"upper":"2026-03-01T10:00:00Z","inclusive":true},"tie":{"upper":"2026-03-01T08:00:00.1234567Z","inclusive":true,"done":["b"]},"handed":[["c","2026-03-01T10:00:00Z"]]}`))
	f.Add([]byte(`{"page":{"upper":"2026-03-01T10:00:00Z"},"at":{"upper":"2026-03-01T10:00:00Z"},"key":{"key":"id","asc":true,"id":"da1"},"key_at":{"key":"id","asc":true,"id":"da2"}}`))
	f.Add([]byte(`{"handed":[["\u00e9\"<",  "2026-03-01T10:00:00Z"]]}`))
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Position
		if json.Unmarshal(b, &p) != nil {
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a parsed position does not write: %v", err)
		}
		var q Position
		if err := json.Unmarshal(again, &q); err != nil {
			t.Fatalf("a written position does not parse: %v\n%s", err, again)
		}
		if back, _ := json.Marshal(q); string(back) != string(again) {
			t.Fatalf("round trip changed the position:\n%s\n%s", again, back)
		}
		d := &drain{from: from, to: from.Add(24 * time.Hour), seen: map[key]int64{}}
		d.page = Cursor{Upper: d.to}
		_ = d.resume(&p)
	})
}
