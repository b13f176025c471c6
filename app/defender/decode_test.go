package defender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/oauth2"
)

type decoded struct {
	raw string
	id  string
	lut time.Time
}

func decodeAll(t testing.TB, r io.Reader) ([]decoded, error) {
	t.Helper()
	var out []decoded
	d := newPageDecoder()
	_, err := d.decode(r, func(raw []byte, f fields) error {
		out = append(out, decoded{string(raw), f.id, f.lut})
		return nil
	})
	return out, err
}

func TestDecodeMicrosoftSamples(t *testing.T) {
	tests := []struct {
		file   string
		wantID string
		wantT  string
	}{
		{"mde_list_alerts_example1_default.parsed.json", "da637308392288907382_-880718168", "2020-07-20T10:53:50.19Z"},
		{"mde_list_alerts_example2_top10_expand_evidence.parsed.json", "da637472900382838869_1364969609", "2021-01-26T20:33:59.2Z"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			page, err := os.ReadFile("testdata/samples/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAll(t, bytes.NewReader(page))
			if err != nil {
				t.Fatal(err)
			}
			var want struct{ Value []json.RawMessage }
			if err := json.Unmarshal(page, &want); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want.Value) || len(got) == 0 {
				t.Fatalf("decoded %d alerts, want %d", len(got), len(want.Value))
			}
			if got[0].id != tt.wantID || !got[0].lut.Equal(mustTime(t, tt.wantT)) {
				t.Errorf("got id %q time %v, want %q %s", got[0].id, got[0].lut, tt.wantID, tt.wantT)
			}
			for i := range got {
				if got[i].raw != string(want.Value[i]) {
					t.Errorf("alert %d: raw bytes differ from the reply's", i)
				}
			}
		})
	}
}

// The documented bare alert, placed in a page as the API would, comes out byte for byte.
func TestDecodeKeepsExactBytes(t *testing.T) {
	alert, err := os.ReadFile("testdata/samples/mde_alert_get_by_id.verbatim.json")
	if err != nil {
		t.Fatal(err)
	}
	alert = bytes.TrimSpace(alert)
	page := `{"@odata.context":"https://api.securitycenter.microsoft.com/api/$metadata#Alerts","value":[` +
		string(alert) + " ,\n" + string(alert) + `]}`
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(page),
		"one byte": iotest.OneByteReader(strings.NewReader(page)),
		"half":     iotest.HalfReader(strings.NewReader(page)),
	} {
		got, err := decodeAll(t, r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 2 || got[0].raw != string(alert) || got[1].raw != string(alert) {
			t.Fatalf("%s: raw bytes changed (%d alerts)", name, len(got))
		}
	}
}

// Every strict prefix of a page is a cut-off reply: never a success, never a silent loss.
func TestDecodeCutOffAnywhere(t *testing.T) {
	page := testPage(t, 3)
	for n := 0; n < len(page); n++ {
		if strings.TrimSpace(page[n:]) == "" {
			continue
		}
		_, err := decodeAll(t, strings.NewReader(page[:n]))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("prefix of %d bytes: err = %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
	// A read error (a reset connection) comes back as itself.
	reset := errors.New("connection reset by peer")
	_, err := decodeAll(t, io.MultiReader(strings.NewReader(page[:len(page)/2]), iotest.ErrReader(reset)))
	if !errors.Is(err, reset) {
		t.Fatalf("err = %v, want the read error", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	ok := `{"id":"a1","lastUpdateTime":"2024-05-01T10:00:00.1234567Z"}`
	tests := []struct {
		name    string
		give    string
		wantRec int
		wantMsg string
	}{
		{"not an object", `[1]`, -1, `want '{'`},
		{"no value", `{"@odata.context":"x"}`, -1, `no "value" array`},
		{"alert not object", `{"value":[` + ok + `,3]}`, 1, "must be a JSON object"},
		{"no id", `{"value":[` + ok + `,{"lastUpdateTime":"2024-05-01T10:00:00Z"}]}`, 1, `no "id"`},
		{"id not string", `{"value":[{"id":5,"lastUpdateTime":"2024-05-01T10:00:00Z"}]}`, 0, `no "id" string`},
		{"no time", `{"value":[{"id":"x"}]}`, 0, `no "lastUpdateTime"`},
		{"bad time", `{"value":[{"id":"x","lastUpdateTime":"yesterday"}]}`, 0, "not a UTC ISO-8601"},
		{"bad json in alert", `{"value":[{"id":"x","lastUpdateTime":"2024-05-01T10:00:00Z","a":tru}]}`, 0, "bad literal"},
		{"control char", "{\"value\":[{\"id\":\"x\u0001\",\"lastUpdateTime\":\"2024-05-01T10:00:00Z\"}]}", 0, "control character"},
		{"trailing data", `{"value":[]} x`, -1, "after the end"},
		{"twice", `{"value":[],"value":[]}`, -1, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeAll(t, strings.NewReader(tt.give))
			var de *decodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *decodeError", err)
			}
			if de.Record != tt.wantRec || !strings.Contains(de.Error(), tt.wantMsg) {
				t.Errorf("got %q (record %d), want record %d and %q", de.Error(), de.Record, tt.wantRec, tt.wantMsg)
			}
		})
	}
}

func TestDecodeEscapesAndOddShapes(t *testing.T) {
	page := "{ \"value\" : [ {\"title\":\"q\\\"}{[\\\\\",\"id\":\"a\\u0062c\",\"nested\":{\"id\":\"inner\",\"lastUpdateTime\":\"1999-01-01T00:00:00Z\"},\"lastUpdateTime\":\"2024-05-01T10:00:00.5Z\"} ] , \"@odata.nextLink\" : null }\n"
	got, err := decodeAll(t, iotest.OneByteReader(strings.NewReader(page)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].id != "abc" || !got[0].lut.Equal(mustTime(t, "2024-05-01T10:00:00.5Z")) {
		t.Fatalf("got %+v", got)
	}
}

// TestDecodeEscapedNames: a member name written with escapes is the same name, as it is to
// encoding/json (and to Splunk): the first "id", however spelled, is the alert's id.
func TestDecodeEscapedNames(t *testing.T) {
	page := `{"value":[{"\u0069d":"x","lastUpdat\u0065Time":"2024-05-01T10:00:00Z","id":"y"}]}`
	got, err := decodeAll(t, strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].id != "x" || !got[0].lut.Equal(mustTime(t, "2024-05-01T10:00:00Z")) {
		t.Fatalf("got %+v, want id x at 10:00:00", got)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		give string
		want time.Time
		bad  bool
	}{
		{give: "2021-01-26T20:33:59.2Z", want: time.Date(2021, 1, 26, 20, 33, 59, 200000000, time.UTC)},
		{give: "2021-01-26T20:33:59.1234567Z", want: time.Date(2021, 1, 26, 20, 33, 59, 123456700, time.UTC)},
		{give: "2021-01-26T20:33:59Z", want: time.Date(2021, 1, 26, 20, 33, 59, 0, time.UTC)},
		{give: "2021-01-26T22:33:59+02:00", want: time.Date(2021, 1, 26, 20, 33, 59, 0, time.UTC)},
		{give: "2021-02-31T20:33:59Z", bad: true},
		{give: "2021-01-26 20:33:59Z", bad: true},
		{give: "", bad: true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.give)
		if (err != nil) != tt.bad || (!tt.bad && !got.Equal(tt.want)) {
			t.Errorf("parseTime(%q) = %v, %v", tt.give, got, err)
		}
	}
	if got := FilterTime(time.Date(2024, 5, 1, 10, 0, 0, 123456700, time.UTC)); got != "2024-05-01T10:00:00.1234567Z" {
		t.Errorf("FilterTime = %s", got)
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := parseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testPage builds a page of n copies of the documented alert with distinct ids and times.
func testPage(t testing.TB, n int) string {
	t.Helper()
	alert, err := os.ReadFile("testdata/samples/mde_alert_get_by_id.verbatim.json")
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, alert); err != nil {
		t.Fatal(err)
	}
	one := compact.String()
	var b strings.Builder
	b.WriteString(`{"@odata.context":"https://api.securitycenter.microsoft.com/api/$metadata#Alerts","value":[`)
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		a := strings.Replace(one, "da637472900382838869_1364969609", fmt.Sprintf("da637472900382838869_%d", i), 1)
		a = strings.Replace(a, "2021-01-26T20:33:59.2Z", FilterTime(base.Add(-time.Duration(i)*time.Second)), 1)
		b.WriteString(a)
	}
	b.WriteString("]}")
	return b.String()
}

func BenchmarkDecodePage10000(b *testing.B) {
	page := []byte(testPage(b, 10000))
	d := newPageDecoder()
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		c, err := d.decode(bytes.NewReader(page), func([]byte, fields) error { return nil })
		if err != nil || c != 10000 {
			b.Fatal(c, err)
		}
		n += c
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(n)/sec, "alerts/s")
	b.ReportMetric(sec*1e6/float64(n), "µs/alert")
	b.ReportMetric(float64(len(page))/10000, "bytes/alert")
}

// FuzzDecodePage checks the decoder against encoding/json: it accepts exactly the pages
// encoding/json reads as {"value":[objects with id and lastUpdateTime strings]}, with the
// same alerts, byte for byte, and never panics.
func FuzzDecodePage(f *testing.F) {
	for _, file := range []string{"mde_list_alerts_example1_default.parsed.json", "mde_list_alerts_example2_top10_expand_evidence.parsed.json"} {
		b, err := os.ReadFile("testdata/samples/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"value":[{"id":"a","lastUpdateTime":"2024-05-01T10:00:00Z","x":[1,-2.5e3,true,null,{}]}]}`))
	f.Add([]byte(`{"value":[]}`))
	f.Add([]byte(`{"value":[{"id":"\u0041","lastUpdateTime":"2024-05-01T10:00:00Z","s":"\"}"}]}`))
	f.Fuzz(func(t *testing.T, page []byte) {
		got, err := decodeAll(t, iotest.HalfReader(bytes.NewReader(page)))
		var want struct {
			Value []json.RawMessage `json:"value"`
		}
		werr := json.Unmarshal(page, &want)
		wantOK := werr == nil && want.Value != nil && json.Valid(page)
		var wantIDs []string
		if wantOK {
			for _, v := range want.Value {
				var a struct {
					ID  *string `json:"id"`
					LUT *string `json:"lastUpdateTime"`
				}
				if !bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) || json.Unmarshal(v, &a) != nil || a.ID == nil || *a.ID == "" || a.LUT == nil {
					wantOK = false
					break
				}
				if _, err := parseTime(*a.LUT); err != nil {
					wantOK = false
					break
				}
				wantIDs = append(wantIDs, *a.ID)
			}
		}
		if err != nil {
			if wantOK && !hasDuplicateKeys(page) {
				t.Fatalf("decoder rejected a page encoding/json reads: %v", err)
			}
			return
		}
		if !json.Valid(page) {
			t.Fatalf("decoder accepted invalid JSON")
		}
		if !wantOK {
			if !hasDuplicateKeys(page) {
				t.Fatalf("decoder accepted a page encoding/json does not read as alerts: %v", werr)
			}
			return
		}
		if len(got) != len(wantIDs) {
			t.Fatalf("decoded %d alerts, encoding/json %d", len(got), len(wantIDs))
		}
		for i := range got {
			if !json.Valid([]byte(got[i].raw)) || got[i].raw != string(bytes.TrimSpace(want.Value[i])) {
				t.Fatalf("alert %d: raw bytes differ", i)
			}
			if !hasDuplicateKeys(page) && got[i].id != wantIDs[i] {
				t.Fatalf("alert %d: id %q, encoding/json %q", i, got[i].id, wantIDs[i])
			}
		}
	})
}

// hasDuplicateKeys is a rough test for repeated or escaped member names, where encoding/json
// (last wins, case-insensitive) and the decoder (first exact match wins) may differ by design.
func hasDuplicateKeys(page []byte) bool {
	s := string(page)
	return strings.Count(s, `"value"`) > 1 || strings.Count(s, `"id"`) > 1 || strings.Count(s, `"lastUpdateTime"`) > 1 ||
		strings.Contains(strings.ToLower(s), `"id"`) && strings.Count(strings.ToLower(s), `"id"`) != strings.Count(s, `"id"`) ||
		strings.Count(strings.ToLower(s), `"value"`) != strings.Count(s, `"value"`) ||
		strings.Count(strings.ToLower(s), `"lastupdatetime"`) != strings.Count(s, `"lastUpdateTime"`) ||
		strings.Contains(s, `\u`)
}

// FuzzParseTime checks the fast path against time.Parse: same instant whenever both accept.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2021-01-26T20:33:59.2Z", "2021-01-26T20:33:59Z", "2024-02-29T23:59:59.1234567Z", "2023-02-29T00:00:00Z", "2021-01-26T20:33:59.123456789Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		want, werr := time.Parse(time.RFC3339Nano, s)
		if err == nil && werr == nil && !got.Equal(want) {
			t.Fatalf("parseTime(%q) = %v, time.Parse = %v", s, got, want)
		}
		if err == nil && got.Location() != time.UTC {
			t.Fatalf("parseTime(%q) is not UTC", s)
		}
		if werr == nil && err != nil {
			t.Fatalf("parseTime(%q) rejected what time.Parse reads: %v", s, err)
		}
	})
}

// FuzzErrorReplies feeds the API's and Entra ID's error replies to their classifiers: they
// never panic, always classify, and never repeat the raw reply's trace lines.
func FuzzErrorReplies(f *testing.F) {
	for _, name := range []string{"entra_v2_token_error_400.verbatim.json", "mde_error_example1_resource_not_found.verbatim.json", "mde_error_example2_invalid_request_body.verbatim.json"} {
		b, err := os.ReadFile("testdata/samples/" + name)
		if err != nil {
			f.Fatal(err)
		}
		for _, status := range []int{400, 401, 403, 429, 500} {
			f.Add(status, b)
		}
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"3"}}, Body: io.NopCloser(bytes.NewReader(body))}
		ae := classifyResponse(resp, time.Now())
		if ae == nil || ae.Status != status {
			t.Fatalf("not classified: %+v", ae)
		}
		te := tokenErrorFrom(&oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, Body: body})
		if msg := te.Error(); strings.Contains(msg, "Trace ID") || strings.Contains(msg, "\n") {
			t.Fatalf("token error repeats the raw reply: %q", msg)
		}
	})
}
