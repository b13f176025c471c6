package modinput

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// readStream parses a stream as splunkd must: strictly, as XML 1.0 (encoding/xml refuses
// invalid UTF-8 and characters XML forbids). It returns each event's stanza and data.
func readStream(t *testing.T, b []byte) (stanzas, data []string) {
	t.Helper()
	var doc struct {
		Events []struct {
			Stanza string `xml:"stanza,attr"`
			Host   string `xml:"host"`
			Data   string `xml:"data"`
		} `xml:"event"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the stream is not well-formed XML (%v):\n%q", err, b)
	}
	for _, e := range doc.Events {
		stanzas, data = append(stanzas, e.Stanza), append(data, e.Data)
	}
	return stanzas, data
}

// Alert text that is not valid UTF-8, or holds characters XML 1.0 forbids, becomes U+FFFD in
// the stream (one per bad byte) and everything else is kept, so the stream stays well-formed.
func TestEventDataIsValidXMLText(t *testing.T) {
	const r = "\uFFFD"
	tests := []struct{ name, give, want string }{
		{"ASCII and markup", `{"t":"a<b & c>d"}`, `{"t":"a<b & c>d"}`},
		{"valid multibyte", `{"t":"café € 😀 ｱ"}`, `{"t":"café € 😀 ｱ"}`},
		{"Latin-1 byte", "{\"t\":\"caf\xe9\"}", `{"t":"caf` + r + `"}`},
		{"cut-off sequence", "{\"t\":\"\xe2\x82\"}", `{"t":"` + r + r + `"}`},
		{"cut-off at the end", "x\xf0\x9f\x98", "x" + r + r + r},
		{"overlong slash", "a\xc0\xafb", "a" + r + r + "b"},
		{"encoded surrogate", "\xed\xa0\x80", r + r + r},
		{"stray continuation", "\x80\xbf", r + r},
		{"above U+10FFFF", "\xf4\x90\x80\x80", r + r + r + r},
		{"U+FFFE and U+FFFF (not XML characters)", "a\uFFFEb\uFFFFc", "a" + r + "b" + r + "c"},
		{"U+FFFD itself", "a\uFFFDb", "a" + r + "b"},
		{"C0 controls", "a\x00b\x01c\x1fd\te\nf", "a" + r + "b" + r + "c" + r + "d\te\nf"},
		{"DEL and C1 (XML 1.0 allows them)", "a\x7fb\u0085c", "a\x7fb\u0085c"},
		{"invalid next to markup", "<\xff&\xfe>", "<" + r + "&" + r + ">"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := NewEventWriter(&b)
			if err := w.Write(Event{Stanza: "defender_alerts://t\xff1", Time: time.Unix(1, 0), Host: "h\xc3", Data: []byte(tt.give)}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			stanzas, data := readStream(t, b.Bytes())
			if len(data) != 1 || data[0] != tt.want {
				t.Fatalf("data %q, want %q", data, tt.want)
			}
			if stanzas[0] != "defender_alerts://t"+r+"1" {
				t.Errorf("stanza %q", stanzas[0])
			}
		})
	}
}

// sanitized is what an XML reader must get back from <data>: every byte that is not part of
// valid UTF-8, and every character outside XML 1.0's Char production, as U+FFFD; line ends
// as XML normalises them.
func sanitized(b []byte) string {
	var s strings.Builder
	for _, c := range string(b) { // ranging over a string yields U+FFFD once per bad byte
		switch {
		case c == '\t' || c == '\n' || c == '\r' || c >= 0x20 && c <= 0xD7FF || c >= 0xE000 && c <= 0xFFFD || c >= 0x10000 && c <= 0x10FFFF:
			s.WriteRune(c)
		default:
			s.WriteRune('\uFFFD')
		}
	}
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s.String())
}

// Whatever the bytes, the stream is well-formed XML and <data> reads back as the sanitized
// bytes: exactly the input when it is valid XML text.
func FuzzEventWriter(f *testing.F) {
	f.Add([]byte(`{"id":"a","title":"x < y & \"z\" ]]> </data>"}`), "defender_alerts://tenant1", "sh1")
	f.Add([]byte("caf\xe9 \xed\xa0\x80 \uFFFE \x00 \r\n"), "in\xff", "h\x01")
	f.Add([]byte("😀\xf0\x9f\x98"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, stanza, host string) {
		var b bytes.Buffer
		w := NewEventWriter(&b)
		for range 2 {
			if err := w.Write(Event{Stanza: stanza, Time: time.Unix(1, 0), Host: host, Sourcetype: host, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, got := readStream(t, b.Bytes())
		if want := sanitized(data); len(got) != 2 || got[0] != want || got[1] != want {
			t.Fatalf("data %q, want %q twice", got, want)
		}
	})
}
