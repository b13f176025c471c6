package defender

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

func graphConfig(mod func(*Config)) Config {
	cfg := baseConfig()
	cfg.Feed = FeedGraphAlerts
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func TestGraphEndpoints(t *testing.T) {
	const v2 = "/" + testTenant + "/oauth2/v2.0/token"
	tests := []struct {
		name                       string
		give                       func(*Config)
		wantAPI, wantToken, wantSc string
	}{
		{"commercial", nil, "https://graph.microsoft.com", "https://login.microsoftonline.com" + v2, "https://graph.microsoft.com/.default"},
		{"gcc keeps the worldwide host", func(c *Config) { c.Cloud = GCC }, "https://graph.microsoft.com", "https://login.microsoftonline.com" + v2, "https://graph.microsoft.com/.default"},
		{"gcc-high", func(c *Config) { c.Cloud = GCCHigh }, "https://graph.microsoft.us", "https://login.microsoftonline.us" + v2, "https://graph.microsoft.us/.default"},
		{"dod", func(c *Config) { c.Cloud = "DoD" }, "https://dod-graph.microsoft.us", "https://login.microsoftonline.us" + v2, "https://dod-graph.microsoft.us/.default"},
		{"feed name in any case", func(c *Config) { c.Feed = "Graph-Alerts" }, "https://graph.microsoft.com", "https://login.microsoftonline.com" + v2, "https://graph.microsoft.com/.default"},
		{"override keeps the cloud's scope", func(c *Config) { c.Cloud = GCCHigh; c.APIURL = "http://127.0.0.1:9" },
			"http://127.0.0.1:9", "https://login.microsoftonline.us" + v2, "https://graph.microsoft.us/.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(graphConfig(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			ep := c.Endpoints()
			if ep.API.String() != tt.wantAPI || ep.TokenURL != tt.wantToken || ep.Scope != tt.wantSc {
				t.Errorf("got %s %s %s", ep.API, ep.TokenURL, ep.Scope)
			}
		})
	}
}

// The feed sets the defaults and bounds of $top and of the quota; a bad feed, a $top above
// Graph's 1,000 or a region (Graph has none) is refused naming the setting.
func TestGraphConfig(t *testing.T) {
	cfg := graphConfig(nil)
	v, err := check(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.dl != graphAlerts || cfg.PageSize != 500 {
		t.Errorf("dialect %s, PageSize %d; want graph-alerts, 500", v.dl.name, cfg.PageSize)
	}
	if want := (Limits{PerMinute: 150, Minute: time.Minute}); cfg.Limits != want {
		t.Errorf("Limits %+v, want %+v", cfg.Limits, want)
	}
	end := baseConfig()
	if v, err := check(&end); err != nil || v.dl != endpointAlerts || end.PageSize != 10000 || end.Limits != defaultLimits {
		t.Errorf("the default feed changed: %v %v %d %+v", err, v.dl, end.PageSize, end.Limits)
	}
	tests := []struct {
		name       string
		give       func(*Config)
		field, msg string
	}{
		{"unknown feed", func(c *Config) { c.Feed = "graph-incidents" }, "Feed", `Feed "graph-incidents" is not a feed; use one of endpoint-alerts, graph-alerts, incidents`},
		{"top above 500", func(c *Config) { c.PageSize = 501 }, "PageSize", `PageSize "501" must be between 1 and 500 (the API's largest $top)`},
		{"region", func(c *Config) { c.Region = "eu" }, "Region", `Region "eu" applies to the endpoint-alerts and incidents feeds only; leave it empty for graph-alerts`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(graphConfig(tt.give))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || err.Error() != tt.msg {
				t.Errorf("got %v, want %s", err, tt.msg)
			}
		})
	}
}

func TestGraphErrorBody(t *testing.T) {
	sample, err := os.ReadFile("testdata/samples/graph_error_example.verbatim.json")
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat(`{"innerError":`, 3000) + `{"request-id":"deepest"}` + strings.Repeat("}", 3000)
	tests := []struct {
		name   string
		header string // the reply's request-id header
		give   string
		want   errorBody
	}{
		{"Microsoft's example", "", string(sample), errorBody{code: "invalidRange", message: "Uploaded fragment overlaps with existing data.", requestID: "request-id", date: "date-time"}},
		{"real shape", "", `{"error":{"code":"accessDenied","message":"Insufficient privileges.","innerError":{"date":"2026-12-02T10:00:00","request-id":"3c4f2a9e-1b7d-4e8a-9f0c-5d6e7f8a9b0c","client-request-id":"3c4f2a9e-1b7d-4e8a-9f0c-5d6e7f8a9b0c"}}}`,
			errorBody{code: "accessDenied", message: "Insufficient privileges.", requestID: "3c4f2a9e-1b7d-4e8a-9f0c-5d6e7f8a9b0c", date: "2026-12-02T10:00:00"}},
		{"nested: outer ids first", "", `{"error":{"code":"badRequest","message":"m","innerError":{"request-id":"outer","date":"d1","innerError":{"request-id":"inner","date":"d2"}}}}`,
			errorBody{code: "badRequest", message: "m", requestID: "outer", date: "d1"}},
		{"nested: only the inner one has them", "", `{"error":{"code":"badRequest","message":"m","innerError":{"code":"x","innerError":{"request-id":"inner","date":"d2"}}}}`,
			errorBody{code: "badRequest", message: "m", requestID: "inner", date: "d2"}},
		{"lower-case innererror", "", `{"error":{"code":"c","message":"m","innererror":{"request-id":"r"}}}`, errorBody{code: "c", message: "m", requestID: "r"}},
		{"request-id from the header", "hdr-1", `{"error":{"code":"c","message":"m"}}`, errorBody{code: "c", message: "m", requestID: "hdr-1"}},
		{"the body's request-id wins", "hdr-1", `{"error":{"code":"c","innerError":{"request-id":"body-1"}}}`, errorBody{code: "c", requestID: "body-1"}},
		{"not JSON", "", `<html>Service Unavailable</html>`, errorBody{}},
		{"empty", "", ``, errorBody{}},
		{"error is a string", "", `{"error":"nope"}`, errorBody{}},
		{"wrong types are left out, not the rest", "", `{"error":{"code":7,"message":"m","innerError":{"request-id":["x"],"date":"d"}}}`, errorBody{message: "m", date: "d"}},
		{"control characters and lines", "", "{\"error\":{\"code\":\"c\\u001b[31m\",\"message\":\"first line\\nsecond line\",\"innerError\":{\"request-id\":\"r\\r\\nX-Injected: 1\"}}}",
			errorBody{code: "c[31m", message: "first line", requestID: "r"}},
		{"long values cut", "", `{"error":{"code":"` + strings.Repeat("c", 500) + `","message":"` + strings.Repeat("m", 5000) + `","innerError":{"request-id":"` + strings.Repeat("r", 500) + `"}}}`,
			errorBody{code: strings.Repeat("c", 64) + "…", message: strings.Repeat("m", 300) + "…", requestID: strings.Repeat("r", 64) + "…"}},
		{"invalid UTF-8", "", "{\"error\":{\"code\":\"c\xff\",\"message\":\"m\"}}", errorBody{code: "c\uFFFD", message: "m"}},
		{"deeply nested", "", `{"error":{"code":"c","innerError":` + deep + `}}`, errorBody{code: "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("request-id", tt.header)
			}
			if got := graphErrorBody(h, []byte(tt.give)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// A Graph error reply becomes an *APIError whose text carries the request-id for Microsoft
// support, with Graph's hints; the class follows the status as for the Alert API.
func TestGraphClassify(t *testing.T) {
	body := `{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2026-12-02T10:00:00","request-id":"3c4f2a9e-1b7d-4e8a-9f0c-5d6e7f8a9b0c"}}}`
	tests := []struct {
		status    int
		retryable bool
		want      []string
	}{
		{403, false, []string{"Microsoft Graph: HTTP 403 Authorization_RequestDenied: Insufficient privileges to complete the operation. (request-id 3c4f2a9e-1b7d-4e8a-9f0c-5d6e7f8a9b0c, date 2026-12-02T10:00:00)", "SecurityAlert.Read.All"}},
		{429, true, []string{"request-id 3c4f2a9e", "150 calls per minute"}},
		{503, true, []string{"HTTP 503", "request-id 3c4f2a9e"}},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Retry-After": {"2"}}, Body: io.NopCloser(strings.NewReader(body))}
		e := graphAlerts.classify(resp, time.Now())
		if e.Retryable() != tt.retryable || e.RequestID != "3c4f2a9e-1b7d-4e8a-9f0c-5d6e7f8a9b0c" {
			t.Errorf("%d: retryable %v, request-id %q", tt.status, e.Retryable(), e.RequestID)
		}
		for _, w := range tt.want {
			if !strings.Contains(e.Error(), w) {
				t.Errorf("%d: %q lacks %q", tt.status, e.Error(), w)
			}
		}
		if strings.Contains(e.Error(), "Alert.Read.All application permission") && !strings.Contains(e.Error(), "SecurityAlert") {
			t.Errorf("%d: the Alert API's hint on a Graph error: %s", tt.status, e)
		}
	}
}

// Microsoft's alerts_v2 example goes through the record parser: id and update time read in
// Graph's names, the record's bytes handed on exactly (typed evidence included).
func TestDecodeGraphSample(t *testing.T) {
	page, err := os.ReadFile("testdata/samples/graph_alerts_v2_list_example.verbatim.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ Value []json.RawMessage }
	if err := json.Unmarshal(page, &want); err != nil || len(want.Value) != 1 {
		t.Fatalf("sample: %v", err)
	}
	var got []fields
	var raws [][]byte
	n, err := newDecoder(graphAlerts).decode(iotest.OneByteReader(bytes.NewReader(page)), func(raw []byte, f fields) error {
		got, raws = append(got, f), append(raws, bytes.Clone(raw))
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("decoded %d, %v", n, err)
	}
	wantLUT := time.Date(2021, 5, 2, 14, 19, 1, 326666700, time.UTC)
	wantCreated := time.Date(2021, 4, 27, 12, 19, 27, 721130500, time.UTC)
	if got[0].id != "da637551227677560813_-961444813" || !got[0].lut.Equal(wantLUT) || !got[0].created.Equal(wantCreated) {
		t.Errorf("got %+v", got[0])
	}
	if !bytes.Equal(raws[0], want.Value[0]) {
		t.Error("the record's bytes differ from the page's")
	}
	for _, typ := range []string{"deviceEvidence", "fileEvidence", "processEvidence", "registryKeyEvidence"} {
		if !bytes.Contains(raws[0], []byte(`"@odata.type": "#microsoft.graph.security.`+typ+`"`)) {
			t.Errorf("evidence %s not handed on as sent", typ)
		}
	}
	// The endpoint feed's names find no update time in a Graph record: the dialect is what reads it.
	if _, err := newDecoder(endpointAlerts).decode(bytes.NewReader(page), func([]byte, fields) error { return nil }); err == nil || !strings.Contains(err.Error(), `no "lastUpdateTime"`) {
		t.Errorf("the endpoint dialect read a Graph page: %v", err)
	}
}

// Enum values and evidence kinds the client has never heard of pass through; times with 0 to
// 7 fractional digits keep their full precision (the dedupe key).
func TestDecodeGraphOpenEnumsAndPrecision(t *testing.T) {
	rec := func(id, lut string) string {
		return `{"@odata.type":"#microsoft.graph.security.alert","id":"` + id + `","status":"awaitingQuantumReview","severity":"catastrophic",` +
			`"serviceSource":"microsoftDefenderForCloud","detectionSource":"microsoftDefenderForAiAgents",` +
			`"createdDateTime":"2026-12-01T00:00:00Z","lastUpdateDateTime":"` + lut + `",` +
			`"evidence":[{"@odata.type":"#microsoft.graph.security.aiAgentEvidence","verdict":"unknownFutureValue","agentName":"x","roles":["contextual"]}]}`
	}
	luts := []string{"2026-12-01T10:00:00Z", "2026-12-01T10:00:00.1Z", "2026-12-01T10:00:00.12Z", "2026-12-01T10:00:00.116Z",
		"2026-12-01T10:00:00.1234Z", "2026-12-01T10:00:00.12345Z", "2026-12-01T10:00:00.123456Z", "2026-12-01T10:00:00.1234567Z"}
	var recs []string
	for i, l := range luts {
		recs = append(recs, rec(string(rune('a'+i)), l))
	}
	page := `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2","@odata.nextLink":"https://graph.microsoft.com/v1.0/security/alerts_v2?$skiptoken=x","value":[` + strings.Join(recs, ",") + `]}`
	i := 0
	_, err := newDecoder(graphAlerts).decode(strings.NewReader(page), func(raw []byte, f fields) error {
		want, _ := time.Parse(time.RFC3339Nano, luts[i])
		if !f.lut.Equal(want) || f.lut.Nanosecond() != want.Nanosecond() || string(raw) != recs[i] {
			t.Errorf("record %d: update time %s, want %s (raw same: %v)", i, FilterTime(f.lut), luts[i], string(raw) == recs[i])
		}
		if i > 0 && keyOf(f.id, f.lut) == keyOf(f.id, mustTime(t, luts[i-1])) {
			t.Errorf("record %d: dedupe key lost precision", i)
		}
		i++
		return nil
	})
	if err != nil || i != len(luts) {
		t.Fatalf("decoded %d of %d: %v", i, len(luts), err)
	}
}

// FuzzGraphErrorBody: whatever the body and header, the parser never panics and every field
// it returns is one printable line of valid UTF-8, cut short; a well-formed body is read whole.
func FuzzGraphErrorBody(f *testing.F) {
	sample, err := os.ReadFile("testdata/samples/graph_error_example.verbatim.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample, "")
	f.Add([]byte(`{"error":{"code":"c","message":"m","innerError":{"request-id":"a","innerError":{"date":"d"}}}}`), "hdr")
	f.Add([]byte(`{"error":{"code":1,"innererror":{"request-id":null}}}`), "")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		h := http.Header{}
		h.Set("request-id", header)
		eb := graphErrorBody(h, body)
		for _, s := range []string{eb.code, eb.message, eb.requestID, eb.date} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(s) > 300+len("…") {
				t.Fatalf("unsafe field %q", s)
			}
		}
		var doc struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &doc) == nil && eb.code != oneLine(doc.Error.Code, 64) {
			t.Fatalf("code %q, encoding/json reads %q", eb.code, doc.Error.Code)
		}
	})
}

// FuzzDecodeGraphPage runs the page parser with Graph's names against encoding/json: it
// accepts only valid JSON, and a page it accepts holds the records encoding/json sees, with
// Graph's id (the walker and validator are FuzzDecodePage's; this covers the dialect's names).
func FuzzDecodeGraphPage(f *testing.F) {
	page, err := os.ReadFile("testdata/samples/graph_alerts_v2_list_example.verbatim.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(page)
	f.Add([]byte(`{"value":[{"id":"a","lastUpdateDateTime":"2026-12-01T10:00:00.1234567Z","createdDateTime":"2026-12-01T10:00:00Z"}]}`))
	f.Add([]byte(`{"value":[{"id":"a","lastUpdateTime":"2026-12-01T10:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, page []byte) {
		var ids []string
		_, err := newDecoder(graphAlerts).decode(iotest.HalfReader(bytes.NewReader(page)), func(raw []byte, f fields) error {
			ids = append(ids, f.id)
			return nil
		})
		if err != nil {
			return
		}
		if !json.Valid(page) {
			t.Fatal("accepted invalid JSON")
		}
		var want struct {
			Value []struct {
				ID  string `json:"id"`
				LUT string `json:"lastUpdateDateTime"`
			} `json:"value"`
		}
		if json.Unmarshal(page, &want) != nil || len(want.Value) != len(ids) {
			t.Fatalf("accepted %d records, encoding/json reads %d", len(ids), len(want.Value))
		}
		if hasDuplicateKeys(page) || bytes.Count(bytes.ToLower(page), []byte(`"lastupdatedatetime"`)) != len(ids) {
			return // first exact match (decoder) and last case-insensitive match (encoding/json) may differ
		}
		for i, v := range want.Value {
			if v.ID != ids[i] || v.LUT == "" {
				t.Fatalf("record %d: id %q, encoding/json %q (update time %q)", i, ids[i], v.ID, v.LUT)
			}
		}
	})
}
