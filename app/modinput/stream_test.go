package modinput

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type report struct {
	n    int
	last any
	err  bool
}

// failAfter is a writer that takes n bytes, then fails.
type failAfter struct {
	n   int
	buf bytes.Buffer
}

func (f *failAfter) Write(b []byte) (int, error) {
	if f.buf.Len()+len(b) > f.n {
		return 0, errors.New("splunkd closed the pipe")
	}
	return f.buf.Write(b)
}

// A Stream reports events delivered once flushed, every `every` events and on Flush, each
// report naming the last event's tag; a failed flush reports the error with the tag of the
// last event written, and nothing as delivered.
func TestStreamReports(t *testing.T) {
	tests := []struct {
		name  string
		every int
		give  int  // events written, tagged 1, 2, …
		fail  bool // splunkd's pipe fails
		want  []report
	}{
		{name: "every two", every: 2, give: 5, want: []report{{2, 2, false}, {2, 4, false}, {1, 5, false}}},
		{name: "fewer than every", every: 200, give: 3, want: []report{{3, 3, false}}},
		{name: "nothing written", every: 2, give: 0, want: nil},
		{name: "the pipe fails", every: 200, give: 3, fail: true, want: []report{{0, 3, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &failAfter{n: 1 << 30}
			if tt.fail {
				out.n = 0
			}
			var got []report
			s := NewStream(NewEventWriter(out), Event{Stanza: "defender_alerts://t1", Sourcetype: "st"}, tt.every,
				func(n int, last any, err error) { got = append(got, report{n, last, err != nil}) })
			for i := 1; i <= tt.give; i++ {
				if err := s.Write(time.Unix(int64(i), 0), []byte(fmt.Sprintf(`{"i":%d}`, i)), i); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			err := s.Flush()
			if (err != nil) != tt.fail {
				t.Errorf("flush: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("reports %v, want %v", got, tt.want)
			}
			if !tt.fail && strings.Count(out.buf.String(), `<event stanza="defender_alerts://t1"`) != tt.give {
				t.Errorf("splunkd got %q", out.buf.String())
			}
		})
	}
}
