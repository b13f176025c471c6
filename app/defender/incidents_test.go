package defender

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

func incidentsConfig(mod func(*Config)) Config {
	cfg := baseConfig()
	cfg.Feed = FeedIncidents
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func TestIncidentsEndpoints(t *testing.T) {
	const v2 = "/" + testTenant + "/oauth2/v2.0/token"
	const com, gcc, gov = "https://api.security.microsoft.com", "https://api-gcc.security.microsoft.us", "https://api-gov.security.microsoft.us"
	tests := []struct {
		name                       string
		give                       func(*Config)
		wantAPI, wantToken, wantSc string
	}{
		{"commercial", nil, com, "https://login.microsoftonline.com" + v2, com + "/.default"},
		{"region us", func(c *Config) { c.Region = "us" }, "https://api-us.security.microsoft.com", "https://login.microsoftonline.com" + v2, com + "/.default"},
		{"region EU in any case", func(c *Config) { c.Region = "EU" }, "https://api-eu.security.microsoft.com", "https://login.microsoftonline.com" + v2, com + "/.default"},
		{"region uk", func(c *Config) { c.Region = "uk" }, "https://api-uk.security.microsoft.com", "https://login.microsoftonline.com" + v2, com + "/.default"},
		{"gcc", func(c *Config) { c.Cloud = GCC }, gcc, "https://login.microsoftonline.com" + v2, gcc + "/.default"},
		{"gcc-high", func(c *Config) { c.Cloud = GCCHigh }, gov, "https://login.microsoftonline.us" + v2, gov + "/.default"},
		{"dod", func(c *Config) { c.Cloud = DoD }, gov, "https://login.microsoftonline.us" + v2, gov + "/.default"},
		{"override keeps the cloud's scope", func(c *Config) { c.Cloud = GCC; c.APIURL = "http://127.0.0.1:9" }, "http://127.0.0.1:9", "https://login.microsoftonline.com" + v2, gcc + "/.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(incidentsConfig(tt.give))
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

// The incidents feed's defaults and bounds: $top 100 (the documented largest), 50 calls a
// minute and 1,500 an hour; the Alert API's regions that the XDR API lacks are refused.
func TestIncidentsConfig(t *testing.T) {
	cfg := incidentsConfig(nil)
	v, err := check(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.dl != incidents || cfg.PageSize != 100 {
		t.Errorf("dialect %s, PageSize %d; want incidents, 100", v.dl.name, cfg.PageSize)
	}
	if want := (Limits{PerMinute: 50, Minute: time.Minute, PerHour: 1500, Hour: time.Hour}); cfg.Limits != want {
		t.Errorf("Limits %+v, want %+v", cfg.Limits, want)
	}
	if incidents.idKey || incidents.maxSkip != 0 || incidents.expand != "" || len(incidents.headers) != 0 {
		t.Errorf("idKey %v, maxSkip %d, expand %q, headers %v: want no id paging, no $skip limit, no $expand, no headers",
			incidents.idKey, incidents.maxSkip, incidents.expand, incidents.headers)
	}
	// Were the id ever filterable, its literal would be a number, not a quoted string.
	if got := incidents.keyLiteral("id", 0, "924521"); got != "924521" {
		t.Errorf("id literal %s, want 924521", got)
	}
	tests := []struct {
		name, msg string
		give      func(*Config)
	}{
		{"top above 100", `PageSize "101" must be between 1 and 100 (the API's largest $top)`, func(c *Config) { c.PageSize = 101 }},
		{"an Alert API region", `Region "au" is not a documented region; use one of eu, uk, us, or leave it empty`, func(c *Config) { c.Region = "au" }},
		{"region outside commercial", `Region "us" applies to the commercial cloud only; leave it empty for gcc`, func(c *Config) { c.Region = "us"; c.Cloud = GCC }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(incidentsConfig(tt.give))
			var fe *FieldError
			if !errors.As(err, &fe) || err.Error() != tt.msg {
				t.Errorf("got %v, want %s", err, tt.msg)
			}
		})
	}
}

func TestXDRErrorBody(t *testing.T) {
	tests := []struct {
		name, give string
		want       errorBody
	}{
		{"documented shape", `{"error":{"code":"ODataError","message":"Invalid filter clause","target":"43f4cb08-8fac-4b65-9db1-745c2ae65f3a"}}`,
			errorBody{code: "ODataError", message: "Invalid filter clause", target: "43f4cb08-8fac-4b65-9db1-745c2ae65f3a"}},
		{"no target", `{"error":{"code":"Forbidden","message":"m"}}`, errorBody{code: "Forbidden", message: "m"}},
		{"wrong types are left out, not the rest", `{"error":{"code":1,"message":"m","target":["x"]}}`, errorBody{message: "m"}},
		{"control characters and lines", "{\"error\":{\"code\":\"c\",\"message\":\"a\\nb\",\"target\":\"t\\r\\nX: 1\"}}", errorBody{code: "c", message: "a", target: "t"}},
		{"long target cut", `{"error":{"target":"` + strings.Repeat("t", 500) + `"}}`, errorBody{target: strings.Repeat("t", 64) + "…"}},
		{"not JSON", `<html>`, errorBody{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := xdrErrorBody(nil, []byte(tt.give)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// An XDR error reply becomes an *APIError naming the API and the tracking id; a 403 names
// Incident.Read.All and the Microsoft Threat Protection API, a 429 the incidents' quotas.
func TestIncidentsClassify(t *testing.T) {
	body := `{"error":{"code":"Forbidden","message":"The application does not have any of the required application permissions","target":"43f4cb08"}}`
	tests := []struct {
		status    int
		retryable bool
		want      []string
	}{
		{403, false, []string{"Defender XDR API: HTTP 403 Forbidden: The application does not have any of the required application permissions (tracking id 43f4cb08)", "Incident.Read.All", "Microsoft Threat Protection"}},
		{429, true, []string{"50 calls per minute and 1,500 per hour"}},
		{500, true, []string{"HTTP 500", "tracking id 43f4cb08"}},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Retry-After": {"2"}}, Body: io.NopCloser(strings.NewReader(body))}
		e := incidents.classify(resp, time.Now())
		if e.Retryable() != tt.retryable || e.Target != "43f4cb08" {
			t.Errorf("%d: retryable %v, target %q", tt.status, e.Retryable(), e.Target)
		}
		for _, w := range tt.want {
			if !strings.Contains(e.Error(), w) {
				t.Errorf("%d: %q lacks %q", tt.status, e.Error(), w)
			}
		}
		if strings.Contains(e.Error(), "WindowsDefenderATP") {
			t.Errorf("%d: the Alert API's hint on an incidents error: %s", tt.status, e)
		}
	}
}

// samplePage wraps Microsoft's example incident (a fragment) in a list page as the API sends
// it, with pretty-printing kept.
func samplePage(t testing.TB) ([]byte, []byte) {
	inc, err := os.ReadFile("testdata/samples/xdr_list_incidents_fragment_incident_924521.verbatim.json")
	if err != nil {
		t.Fatal(err)
	}
	inc = bytes.TrimSpace(inc)
	page := append([]byte(`{"@odata.context":"https://api.security.microsoft.com/api/$metadata#Incidents","value":[`), inc...)
	return append(page, "]}"...), inc
}

// Microsoft's example incident goes through the record parser: the numeric incidentId as its
// decimal string, lastUpdateTime and createdTime read, the record's bytes (nested alerts,
// devices and entities included) handed on exactly.
func TestDecodeIncidentSample(t *testing.T) {
	page, inc := samplePage(t)
	var got []fields
	var raws [][]byte
	n, err := newDecoder(incidents).decode(iotest.OneByteReader(bytes.NewReader(page)), func(raw []byte, f fields) error {
		got, raws = append(got, f), append(raws, bytes.Clone(raw))
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("decoded %d, %v", n, err)
	}
	if got[0].id != "924521" || !got[0].lut.Equal(time.Date(2020, 9, 6, 12, 18, 3, 810000000, time.UTC)) ||
		!got[0].created.Equal(time.Date(2020, 9, 6, 12, 18, 3, 626666700, time.UTC)) {
		t.Errorf("got %+v", got[0])
	}
	if !bytes.Equal(raws[0], inc) {
		t.Error("the record's bytes differ from the page's")
	}
	alerts, err := IncidentAlerts(raws[0])
	if err != nil || len(alerts) != 1 {
		t.Fatalf("nested alerts %v, %v", alerts, err)
	}
	if a := alerts[0]; a.ID != "da637349914833441527_393341063" || !a.LastUpdated.Equal(time.Date(2020, 9, 6, 12, 18, 4, 256666700, time.UTC)) ||
		!bytes.HasPrefix(a.Raw, []byte("{")) || !bytes.Contains(a.Raw, []byte(`"mdatpDeviceId": "24c222b0b60fe148eeece49ac83910cc6a7ef491"`)) {
		t.Errorf("nested alert %s %s, raw %.60s", a.ID, a.LastUpdated, a.Raw)
	}
	// The endpoint feed's names find no id in an incident: the dialect is what reads it.
	if _, err := newDecoder(endpointAlerts).decode(bytes.NewReader(page), func([]byte, fields) error { return nil }); err == nil || !strings.Contains(err.Error(), `no "id" string`) {
		t.Errorf("the endpoint dialect read an incidents page: %v", err)
	}
}

// incidentId must be a JSON whole number: its digits are the key. Anything else is refused
// naming the record, never coerced (a quoted id, a fraction or an exponent could name another
// incident's key).
func TestDecodeIncidentIDs(t *testing.T) {
	tests := []struct {
		name, id, want, err string
	}{
		{"number", `924521`, "924521", ""},
		{"zero", `0`, "0", ""},
		{"largest long", `9223372036854775807`, "9223372036854775807", ""},
		{"too large", `9223372036854775808`, "", "too large for a 64-bit id"},
		{"string", `"924521"`, "", `no "incidentId" number`},
		{"null", `null`, "", `no "incidentId" number`},
		{"fraction", `924521.0`, "", "is not a whole number"},
		{"exponent", `9.24521e5`, "", "is not a whole number"},
		{"negative", `-1`, "", "is not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := `{"value":[{"incidentId":` + tt.id + `,"lastUpdateTime":"2026-12-01T00:00:00Z","createdTime":"2026-12-01T00:00:00Z"}]}`
			var got string
			_, err := newDecoder(incidents).decode(strings.NewReader(page), func(_ []byte, f fields) error { got = f.id; return nil })
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "incident page, incident #0, byte 10: ") {
				t.Errorf("got %q, %v; want an error containing %q", got, err, tt.err)
			}
		})
	}
	// A page without the id at all.
	_, err := newDecoder(incidents).decode(strings.NewReader(`{"value":[{"lastUpdateTime":"2026-12-01T00:00:00Z"}]}`), func([]byte, fields) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `the incident has no "incidentId" number`) {
		t.Errorf("missing id: %v", err)
	}
}

// The API documents no @odata.nextLink for incidents; if a reply names one anyway, the
// decoder says so, and the drain then takes no short reply for the whole of its query.
func TestDecodeIncidentPageNextLink(t *testing.T) {
	d := newDecoder(incidents)
	page := `{"@odata.context":"x","@odata.nextLink":"https://api.security.microsoft.com/api/incidents?$skip=100","value":[]}`
	if _, err := d.decode(strings.NewReader(page), func([]byte, fields) error { return nil }); err != nil || !d.more {
		t.Errorf("more %v, %v", d.more, err)
	}
	if (reply{n: 3, more: true}).short(100) {
		t.Error("a reply naming a next page was taken as short")
	}
}

func TestIncidentAlerts(t *testing.T) {
	a1 := `{"alertId":"da1_1","incidentId":7,"lastUpdatedTime":"2026-12-01T10:00:00.1234567Z","entities":[{"entityType":"File"}]}`
	a2 := `{ "lastUpdatedTime" : "2026-12-01T10:00:01Z" , "alertId" : "caD70CFEE2-1F54-32DB-9988-3A868A1EBFAC" }`
	t1 := time.Date(2026, 12, 1, 10, 0, 0, 123456700, time.UTC)
	t2 := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)
	type want struct {
		id  string
		t   time.Time
		raw string
	}
	tests := []struct {
		name, give string
		want       []want
		err        string
	}{
		{"two alerts, exact bytes", `{"incidentId":7,"lastUpdateTime":"2026-12-01T11:00:00Z","alerts":[` + a1 + ` , ` + a2 + `]}`, []want{{"da1_1", t1, a1}, {"caD70CFEE2-1F54-32DB-9988-3A868A1EBFAC", t2, a2}}, ""},
		{"empty", `{"incidentId":7,"alerts":[ ]}`, nil, ""},
		{"null (merged incident)", `{"incidentId":7,"redirectIncidentId":8,"alerts":null}`, nil, ""},
		{"absent", `{"incidentId":7}`, nil, ""},
		{"first of a repeated name counts", `{"alerts":[` + a1 + `],"alerts":[]}`, []want{{"da1_1", t1, a1}}, ""},
		{"escaped id", `{"alerts":[{"alertId":"a\u005fb","lastUpdatedTime":"2026-12-01T10:00:01Z"}]}`, []want{{"a_b", t2, `{"alertId":"a\u005fb","lastUpdatedTime":"2026-12-01T10:00:01Z"}`}}, ""},
		{"escaped names read as encoding/json reads them", `{"incident\u0049d":7,"alerts":[{"alert\u0049d":"b","lastUpdatedTim\u0065":"2026-12-01T10:00:01Z"},{"x":1}]}`, nil, `incident 7, alert #1: the alert has no "alertId" string`},
		{"escaped name read", `{"alerts":[{"alert\u0049d":"b","lastUpdatedTime":"2026-12-01T10:00:01Z"}]}`, []want{{"b", t2, `{"alert\u0049d":"b","lastUpdatedTime":"2026-12-01T10:00:01Z"}`}}, ""},
		{"a name repeated under an escape", `{"incidentId":7,"alerts":[{"alertId":"a","lastUpdatedTime":"2026-12-01T10:00:01Z","alert\u0049d":"b"}]}`, nil, `incident 7, alert #0: the alert names "alertId" or "lastUpdatedTime" twice`},
		{"the incident's lastUpdateTime is not the alert's", `{"incidentId":7,"alerts":[{"alertId":"x","lastUpdateTime":"2026-12-01T10:00:01Z"}]}`, nil, `incident 7, alert #0: alert "x" has no "lastUpdatedTime" string`},
		{"no alertId", `{"incidentId":7,"alerts":[` + a1 + `,{"lastUpdatedTime":"2026-12-01T10:00:01Z"}]}`, nil, `incident 7, alert #1: the alert has no "alertId" string`},
		{"numeric alertId", `{"alerts":[{"alertId":5,"lastUpdatedTime":"2026-12-01T10:00:01Z"}]}`, nil, `incident, alert #0: the alert has no "alertId" string`},
		{"bad time", `{"incidentId":7,"alerts":[{"alertId":"x","lastUpdatedTime":"yesterday"}]}`, nil, `is not a UTC ISO-8601 time`},
		{"alert not an object", `{"incidentId":7,"alerts":[1]}`, nil, "alert #0: an alert must be a JSON object"},
		{"alerts not an array", `{"incidentId":7,"alerts":{}}`, nil, `incident 7: "alerts" is not an array`},
		{"not JSON", `{"alerts":[`, nil, "incident: "},
		{"trailing data", `{"alerts":[]} x`, nil, "data after the object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IncidentAlerts([]byte(tt.give))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %d alerts, %v; want %d", len(got), err, len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].ID != w.id || !got[i].LastUpdated.Equal(w.t) || string(got[i].Raw) != w.raw {
					t.Errorf("alert %d: %q %s %s, want %q %s %s", i, got[i].ID, got[i].LastUpdated, got[i].Raw, w.id, w.t, w.raw)
				}
			}
		})
	}
}

// hasCaseCollisions reports whether a JSON text holds a member name encoding/json would match
// case-insensitively against one of these (where its reading and the exact one may differ).
func hasCaseCollisions(b []byte, names ...string) bool {
	lower := bytes.ToLower(b)
	for _, n := range names {
		if bytes.Count(lower, []byte(`"`+strings.ToLower(n)+`"`)) != bytes.Count(b, []byte(`"`+n+`"`)) {
			return true
		}
	}
	return false
}

// FuzzIncidentAlerts: whatever the bytes, IncidentAlerts never panics; what it accepts is
// valid JSON, each alert's Raw is valid JSON and lies inside the input, and (where names are
// exact and not repeated) it reads the alerts encoding/json reads, in order, with their bytes.
func FuzzIncidentAlerts(f *testing.F) {
	_, inc := samplePage(f)
	f.Add(inc)
	f.Add([]byte(`{"incidentId":7,"alerts":[{"alertId":"a","lastUpdatedTime":"2026-12-01T10:00:00Z"},{"alertId":"b","lastUpdatedTime":"2026-12-01T10:00:00.1234567Z"}]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Add([]byte(`{"alerts":[{"alertId":"a\u0041","lastUpdatedTime":"2026-12-01T10:00:00Z","alertid":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := IncidentAlerts(b)
		if err != nil {
			if !utf8.ValidString(err.Error()) && utf8.Valid(b) {
				t.Fatalf("error not UTF-8: %q", err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatal("accepted invalid JSON")
		}
		for i, a := range got {
			if !json.Valid(a.Raw) || !bytes.Contains(b, a.Raw) || a.ID == "" || a.LastUpdated.IsZero() {
				t.Fatalf("alert %d: %q %v %q", i, a.ID, a.LastUpdated, a.Raw)
			}
			if repeatsName(a.Raw, "alertId", "lastUpdatedTime") {
				t.Fatalf("alert %d names its key twice, yet was read as %q: the key is a guess", i, a.ID)
			}
		}
		if hasDuplicateKeys(b) || repeatsName(b, "alerts") || hasCaseCollisions(b, "alerts", "alertId", "lastUpdatedTime") {
			return
		}
		var want struct {
			Alerts []struct {
				AlertID     string `json:"alertId"`
				LastUpdated string `json:"lastUpdatedTime"`
			} `json:"alerts"`
		}
		var raws struct {
			Alerts []json.RawMessage `json:"alerts"`
		}
		if json.Unmarshal(b, &want) != nil || json.Unmarshal(b, &raws) != nil || len(want.Alerts) != len(got) {
			t.Fatalf("read %d alerts, encoding/json reads %d", len(got), len(want.Alerts))
		}
		for i, w := range want.Alerts {
			lut, err := parseTime(w.LastUpdated)
			if got[i].ID != w.AlertID || err != nil || !lut.Equal(got[i].LastUpdated) || !bytes.Equal(got[i].Raw, raws.Alerts[i]) {
				t.Fatalf("alert %d: %q %v, encoding/json %q %q", i, got[i].ID, got[i].LastUpdated, w.AlertID, w.LastUpdated)
			}
		}
	})
}

// FuzzDecodeIncidentPage runs the page parser with the incidents' names against encoding/json:
// it accepts only valid JSON, and a page it accepts holds the incidents encoding/json sees,
// each id the decimal digits of a whole JSON number.
func FuzzDecodeIncidentPage(f *testing.F) {
	page, _ := samplePage(f)
	f.Add(page)
	f.Add([]byte(`{"value":[{"incidentId":1,"lastUpdateTime":"2026-12-01T10:00:00.1234567Z","createdTime":"2026-12-01T10:00:00Z"}]}`))
	f.Add([]byte(`{"value":[{"incidentId":"1","lastUpdateTime":"2026-12-01T10:00:00Z"}]}`))
	f.Add([]byte(`{"value":[{"incidentId":1e3,"lastUpdateTime":"2026-12-01T10:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, page []byte) {
		var ids []string
		_, err := newDecoder(incidents).decode(iotest.HalfReader(bytes.NewReader(page)), func(raw []byte, f fields) error {
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
				ID  json.Number `json:"incidentId"`
				LUT string      `json:"lastUpdateTime"`
			} `json:"value"`
		}
		if hasDuplicateKeys(page) || hasCaseCollisions(page, "value", "incidentId", "lastUpdateTime") {
			return // first exact match (decoder) and last case-insensitive match (encoding/json) may differ
		}
		if err := json.Unmarshal(page, &want); err != nil || len(want.Value) != len(ids) {
			t.Fatalf("accepted %d records, encoding/json reads %d (%v)", len(ids), len(want.Value), err)
		}
		for i, v := range want.Value {
			if v.ID.String() != ids[i] || v.LUT == "" {
				t.Fatalf("record %d: id %q, encoding/json %q (update time %q)", i, ids[i], v.ID, v.LUT)
			}
			if n, err := v.ID.Int64(); err != nil || n < 0 {
				t.Fatalf("record %d: id %q is not a whole number from 0 up", i, ids[i])
			}
		}
	})
}

// repeatsName reports whether the JSON object obj names one of names more than once at its
// top level (false for anything that is not an object encoding/json reads).
func repeatsName(obj []byte, names ...string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return false
		}
		ks, _ := k.(string)
		if seen[ks] && slices.Contains(names, ks) {
			return true
		}
		seen[ks] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}
