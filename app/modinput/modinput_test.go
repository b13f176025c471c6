package modinput

import (
	"bytes"
	"encoding/xml"
	"flag"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

var update = flag.Bool("update", false, "rewrite golden files")

const inputXML = `<?xml version="1.0" encoding="%s"?>
<input>
  <server_host>sh1</server_host>
  <server_uri>https://127.0.0.1:8089</server_uri>
  <session_key>123102983109283019283</session_key>
  <checkpoint_dir>/opt/splunk/var/lib/splunk/modinputs/defender_alerts</checkpoint_dir>
  <configuration>
    <stanza name="defender_alerts://tenant1" app="TA-defender-alerts">
      <param name="tenant_id">6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c</param>
      <param name="client_secret">s3cr&amp;t</param>
      <param name="index">security</param>
      <param name="interval">300</param>
      <param_list name="hec_url"><value>https://a:8088</value><value>https://b:8088</value></param_list>
    </stanza>
  </configuration>
</input>`

func utf16LE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = []byte{0xFF, 0xFE}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func TestParseInput(t *testing.T) {
	for name, doc := range map[string][]byte{
		"utf-8":                          []byte(strings.Replace(inputXML, "%s", "UTF-8", 1)),
		"utf-16 with BOM":                utf16LE(strings.Replace(inputXML, "%s", "utf-16", 1), true),
		"utf-16 without BOM":             utf16LE(strings.Replace(inputXML, "%s", "utf-16", 1), false),
		"utf-16 declared, utf-8 content": []byte(strings.Replace(inputXML, "%s", "utf-16", 1)),
	} {
		t.Run(name, func(t *testing.T) {
			in, err := ParseInput(bytes.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			s := in.Stanzas[0]
			if in.ServerURI != "https://127.0.0.1:8089" || in.SessionKey != "123102983109283019283" || !strings.HasSuffix(in.CheckpointDir, "defender_alerts") ||
				s.Name != "defender_alerts://tenant1" || s.App != "TA-defender-alerts" || s.Params["client_secret"] != "s3cr&t" ||
				s.Params["index"] != "security" || s.Params["hec_url"] != "https://a:8088,https://b:8088" {
				t.Errorf("parsed %+v", in)
			}
		})
	}
	for _, bad := range []string{"", "<input></input>", "<items/>", `<?xml version="1.0" encoding="latin-9"?><input/>`} {
		if _, err := ParseInput(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseInput(%q) accepted", bad)
		}
	}
}

func TestParseValidation(t *testing.T) {
	doc := `<items><server_host>sh1</server_host><server_uri>https://127.0.0.1:8089</server_uri><session_key>k</session_key>
<checkpoint_dir>/tmp/x</checkpoint_dir><item name="tenant1"><param name="cloud">gcc</param></item></items>`
	v, err := ParseValidation(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if v.Item.Name != "tenant1" || v.Item.Params["cloud"] != "gcc" || v.SessionKey != "k" {
		t.Errorf("parsed %+v", v)
	}
	var b bytes.Buffer
	_ = WriteError(&b, `cloud "x<y>" is not a cloud`)
	if b.String() != "<error><message>cloud &#34;x&lt;y&gt;&#34; is not a cloud</message></error>\n" {
		t.Errorf("error document %q", b.String())
	}
}

func TestEventStreamGolden(t *testing.T) {
	var b bytes.Buffer
	w := NewEventWriter(&b)
	for i, data := range []string{`{"id":"a","title":"x < y & \"z\""}`, "{\"id\":\"b\",\"description\":\"line1\\nline2 ]]> </data>\"}"} {
		if err := w.Write(Event{Stanza: "defender_alerts://tenant1", Time: time.Date(2021, 1, 26, 20, 33, 59, 200000000+i, time.UTC),
			Source: "defender_alerts", Sourcetype: "ms:defender:atp:alerts", Index: "security", Host: "sh1", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// What splunkd reads back from <data> is the event's exact bytes.
	var doc struct {
		Events []struct {
			Data string `xml:"data"`
		} `xml:"event"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil || len(doc.Events) != 2 || !strings.Contains(doc.Events[1].Data, "line2 ]]> </data>") {
		t.Fatalf("stream does not parse back: %v %+v", err, doc)
	}
	const golden = "testdata/stream.golden"
	if *update {
		_ = os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("stream differs from %s:\n%s", golden, b.String())
	}
}

func TestLogLines(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(NewLogHandler(&b, slog.LevelDebug)).With("input", "tenant1")
	log.Debug("d")
	log.Info("started", "alerts", 3)
	log.Warn("two\nlines", "err", "x y")
	log.Error("failed", "err", `HEC said "Server is busy" (code=9)`, "tab", "a\tb")
	want := "DEBUG d input=tenant1\nINFO started input=tenant1 alerts=3\nWARN two lines input=tenant1 err=\"x y\"\n" +
		"ERROR failed input=tenant1 err=\"HEC said 'Server is busy' (code=9)\" tab=\"a\tb\"\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func FuzzParseInput(f *testing.F) {
	f.Add([]byte(strings.Replace(inputXML, "%s", "UTF-8", 1)))
	f.Add(utf16LE(strings.Replace(inputXML, "%s", "utf-16", 1), true))
	f.Add([]byte("<input><configuration><stanza name=\"x\"/></configuration></input>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInput(bytes.NewReader(b))
		if err == nil && len(in.Stanzas) == 0 {
			t.Fatal("accepted an input without stanzas")
		}
		_, _ = ParseValidation(bytes.NewReader(b))
	})
}
