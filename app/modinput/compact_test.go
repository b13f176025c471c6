package modinput

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"testing"
)

func TestAppendCompactJSON(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "compact stays", give: `{"a":1,"b":"x y"}`, want: `{"a":1,"b":"x y"}`},
		{name: "pretty", give: "{\n  \"a\": 1,\r\n\t\"b\": [ true , null ]\n}\n", want: `{"a":1,"b":[true,null]}`},
		{name: "spaces inside strings kept", give: `{ "t" : "  two  spaces\tand a tab " }`, want: `{"t":"  two  spaces\tand a tab "}`},
		{name: "escapes stay escapes", give: `{ "d": "line1\nline2 \"q\" \\", "e": "\u0041 \/" }`, want: `{"d":"line1\nline2 \"q\" \\","e":"\u0041 \/"}`},
		{name: "escaped backslash ends before the quote", give: `{ "p": "C:\\" , "q": " x " }`, want: `{"p":"C:\\","q":" x "}`},
		{name: "raw bytes inside strings untouched", give: "{ \"x\": \"caf\xe9 \xff \u00e9\" }", want: "{\"x\":\"caf\xe9 \xff \u00e9\"}"},
		{name: "unterminated string kept as is", give: `{ "a": "b  c`, want: `{"a":"b  c`},
		{name: "only whitespace", give: " \n\t", want: ""},
		{name: "empty", give: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendCompactJSON(nil, []byte(tt.give))
			if string(got) != tt.want {
				t.Errorf("CompactJSON(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

// It appends to what dst holds.
func TestAppendCompactJSONAppends(t *testing.T) {
	for _, src := range []string{`{"a":"x y"}`, `{ "a" : "x y" }`} {
		if got := AppendCompactJSON([]byte("<data>"), []byte(src)); string(got) != `<data>{"a":"x y"}` {
			t.Errorf("AppendCompactJSON(<data>, %q) = %q", src, got)
		}
	}
}

// For valid JSON, the result is what encoding/json's Compact makes; for any bytes, the
// result holds no whitespace outside strings and is the input with only such bytes removed.
func FuzzAppendCompactJSON(f *testing.F) {
	sample, err := os.ReadFile("../defendertest/testdata/alert_template.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte(`{ "d": "line1\nline2 \"q\" \\", "e": [ 1 , 2 ] }`))
	f.Add([]byte("\"\\"))
	f.Fuzz(func(t *testing.T, src []byte) {
		got := AppendCompactJSON(nil, src)
		if json.Valid(src) {
			var want bytes.Buffer
			if err := json.Compact(&want, src); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("CompactJSON(%q) = %q, json.Compact says %q", src, got, want.Bytes())
			}
		}
		if again := AppendCompactJSON(nil, got); !bytes.Equal(again, got) {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		// got is a subsequence of src missing only whitespace bytes.
		j := 0
		for i := 0; i < len(src); i++ {
			if j < len(got) && src[i] == got[j] {
				j++
				continue
			}
			if c := src[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				t.Fatalf("CompactJSON(%q) = %q dropped %q", src, got, c)
			}
		}
		if j != len(got) {
			t.Fatalf("CompactJSON(%q) = %q is not made of the input's bytes", src, got)
		}
	})
}

// The cost of one event's compaction on the stdout path, on Microsoft's documented alert
// (with evidence): pretty-printed as the docs show it, and compact as the API sends it.
func BenchmarkAppendCompactJSON(b *testing.B) {
	pretty, compact := sampleAlert(b)
	for _, bb := range []struct {
		name string
		src  []byte
	}{{"pretty", pretty}, {"compact", compact}} {
		b.Run(bb.name, func(b *testing.B) {
			buf := make([]byte, 0, 8<<10)
			b.SetBytes(int64(len(bb.src)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendCompactJSON(buf[:0], bb.src)
			}
		})
	}
}

// For scale: writing the same alert as one stream event (escaping and framing), the work
// the stdout path does for every event anyway.
func BenchmarkEventWrite(b *testing.B) {
	_, compact := sampleAlert(b)
	w := NewEventWriter(io.Discard)
	ev := Event{Stanza: "defender_alerts://tenant1", Sourcetype: "ms:defender:atp:alerts", Data: compact}
	b.SetBytes(int64(len(compact)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// sampleAlert is Microsoft's documented alert (with evidence), pretty-printed as the docs
// show it, and compact as the API sends it.
func sampleAlert(b *testing.B) (pretty, compact []byte) {
	b.Helper()
	pretty, err := os.ReadFile("../defendertest/testdata/alert_template.json")
	if err != nil {
		b.Fatal(err)
	}
	var c bytes.Buffer
	if err := json.Compact(&c, pretty); err != nil {
		b.Fatal(err)
	}
	return pretty, c.Bytes()
}
