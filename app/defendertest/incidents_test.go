package defendertest_test

import (
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/defendertest/dtest"
)

const xdrScope = defendertest.XDRCommercial + "/.default"

// xincident is what these tests read of an incident; Raw keeps it whole.
type xincident struct {
	ID         json.Number       `json:"incidentId"`
	LastUpdate string            `json:"lastUpdateTime"`
	Created    string            `json:"createdTime"`
	Status     string            `json:"status"`
	AssignedTo *string           `json:"assignedTo"`
	Alerts     []json.RawMessage `json:"alerts"`
}

type xalert struct {
	AlertID     string `json:"alertId"`
	LastUpdated string `json:"lastUpdatedTime"`
	Status      string `json:"status"`
}

type xpage struct {
	Context string            `json:"@odata.context"`
	Value   []json.RawMessage `json:"value"`
}

type xerror struct {
	Error struct{ Code, Message, Target string } `json:"error"`
}

// xdrServer starts a stand-in in IncidentsMode with n incidents a minute apart (the default
// sizes) and returns it with a token for the XDR API.
func xdrServer(t *testing.T, opt defendertest.Options, n int) (*defendertest.Server, string) {
	t.Helper()
	opt.Mode, opt.TenantID, opt.ClientID, opt.ClientSecret = defendertest.IncidentsMode, tTenant, tClient, "pw"
	s := defendertest.New(opt)
	t.Cleanup(s.Close)
	s.AddAlerts(n, func(i int) time.Time { return graphBase.Add(time.Duration(i)*time.Minute + fraction(i)) })
	return s, dtest.TokenForScope(t, s, tTenant, tClient, "pw", xdrScope)
}

// xget returns the status and body of a GET with a bearer token.
func xget(t *testing.T, u, tok string) (int, http.Header, []byte) {
	t.Helper()
	return graphGet(t, u, tok)
}

func xlist(t *testing.T, s *defendertest.Server, tok, query string) []xincident {
	t.Helper()
	status, _, body := xget(t, s.URL+"/api/incidents?"+query, tok)
	if status != 200 {
		t.Fatalf("GET ?%s: %d %s", query, status, body)
	}
	var p xpage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	var out []xincident
	for _, raw := range p.Value {
		var in xincident
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		out = append(out, in)
	}
	return out
}

func wantXDRError(t *testing.T, body []byte, code, msgPart string) {
	t.Helper()
	var e xerror
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Error.Code != code || !strings.Contains(e.Error.Message, msgPart) || len(e.Error.Target) != 32 {
		t.Errorf("error %+v, want code %q, a message containing %q and a tracking id", e.Error, code, msgPart)
	}
}

func q(filter string) string { return "$filter=" + url.QueryEscape(filter) }

// Each mode answers its own path only: IncidentsMode refuses the Alert API's and Graph's paths,
// and the other modes refuse /api/incidents.
func TestIncidentsPaths(t *testing.T) {
	s, tok := xdrServer(t, defendertest.Options{}, 3)
	for path, want := range map[string]int{"/api/incidents": 200, "/api/alerts": 404, "/api/v1.0/alerts": 404, "/v1.0/security/alerts_v2": 404} {
		status, _, body := xget(t, s.URL+path, tok)
		if status != want {
			t.Errorf("%s: %d %s, want %d", path, status, body, want)
		}
		if status == 404 {
			wantXDRError(t, body, "ResourceNotFound", path)
		}
	}
	a := defendertest.New(defendertest.Options{TenantID: tTenant, ClientID: tClient, ClientSecret: "pw"})
	defer a.Close()
	if got := dtest.GetStatus(t, a.URL+"/api/incidents", tokenFor(t, a)); got != 404 {
		t.Errorf("the Alert API stand-in answered /api/incidents with %d", got)
	}
}

// The XDR API wants a token for its own audience with Incident.Read.All: a token for the Alert
// API (api.securitycenter) is 401, an expired one 401, one without the role 403 naming it.
func TestIncidentsTokens(t *testing.T) {
	s, tok := xdrServer(t, defendertest.Options{}, 1)
	u := s.URL + "/api/incidents"
	if status, _, body := xget(t, u, tok); status != 200 {
		t.Fatalf("XDR token: %d %s", status, body)
	}
	alertTok := dtest.TokenForScope(t, s, tTenant, tClient, "pw", defendertest.Resource+"/.default")
	status, _, body := xget(t, u, alertTok)
	if status != 401 {
		t.Errorf("Alert API token: %d, want 401", status)
	}
	wantXDRError(t, body, "Unauthorized", "invalid")
	s.ExpireTokens()
	if status, _, _ := xget(t, u, tok); status != 401 {
		t.Errorf("expired token: %d, want 401", status)
	}
	gov := defendertest.New(defendertest.Options{Mode: defendertest.IncidentsMode, XDRHost: "https://api-gov.security.microsoft.us", TenantID: tTenant, ClientID: tClient, ClientSecret: "pw"})
	defer gov.Close()
	if got := dtest.GetStatus(t, gov.URL+"/api/incidents", dtest.TokenForScope(t, gov, tTenant, tClient, "pw", "https://api-gov.security.microsoft.us/.default")); got != 200 {
		t.Errorf("GCC High token on a GCC High stand-in: %d", got)
	}

	np, nptok := xdrServer(t, defendertest.Options{NoPermission: true}, 1)
	status, _, body = xget(t, np.URL+"/api/incidents", nptok)
	if status != 403 {
		t.Fatalf("no permission: %d", status)
	}
	wantXDRError(t, body, "Forbidden", "Incident.Read.All")
}

// An incident has the fields of Microsoft's example (shared/samples/microsoft-docs), the
// incident id a number; its alerts have theirs (lastUpdatedTime with a "d", devices with
// mdatpDeviceId); incidents group 1 to 5 alerts, and every 25th IncidentBigSize.
func TestIncidentsFields(t *testing.T) {
	sample, err := os.ReadFile("../defender/testdata/samples/xdr_list_incidents_fragment_incident_924521.verbatim.json")
	if err != nil {
		t.Fatal(err)
	}
	keys := func(raw []byte) []string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	var sampleInc struct{ Alerts []json.RawMessage }
	if err := json.Unmarshal(sample, &sampleInc); err != nil {
		t.Fatal(err)
	}
	s, tok := xdrServer(t, defendertest.Options{}, 60)
	status, _, body := xget(t, s.URL+"/api/incidents?$top=100", tok)
	if status != 200 {
		t.Fatal(status)
	}
	var p xpage
	if err := json.Unmarshal(body, &p); err != nil || len(p.Value) != 60 {
		t.Fatalf("%d incidents, %v", len(p.Value), err)
	}
	if !strings.HasSuffix(p.Context, "/api/$metadata#Incidents") {
		t.Errorf("@odata.context %q", p.Context)
	}
	sizes := map[int]int{}
	for _, raw := range p.Value {
		if got, want := keys(raw), keys(sample); !slices.Equal(got, want) {
			t.Fatalf("incident keys %v, want the example's %v", got, want)
		}
		if !strings.Contains(string(raw), `"incidentId":`) || strings.Contains(string(raw), `"incidentId":"`) {
			t.Fatalf("incidentId is not a number: %.80s", raw)
		}
		var in xincident
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		sizes[len(in.Alerts)]++
		for _, a := range in.Alerts {
			if got, want := keys(a), keys(sampleInc.Alerts[0]); !slices.Equal(got, want) {
				t.Fatalf("alert keys %v, want the example's %v", got, want)
			}
			var al xalert
			_ = json.Unmarshal(a, &al)
			if !strings.HasPrefix(al.AlertID, "da") || al.LastUpdated == "" || !strings.Contains(string(a), `"mdatpDeviceId"`) {
				t.Fatalf("alert %s", a)
			}
		}
	}
	if sizes[defendertest.IncidentBigSize] != 60/defendertest.IncidentBigEvery {
		t.Errorf("sizes %v: want %d incidents of %d alerts", sizes, 60/defendertest.IncidentBigEvery, defendertest.IncidentBigSize)
	}
	for n := range sizes {
		if n < 1 || n > 5 && n != defendertest.IncidentBigSize {
			t.Errorf("an incident of %d alerts", n)
		}
	}
}

// $filter takes lastUpdateTime, createdTime (unquoted dates), status and assignedTo (quoted),
// joined by and; anything else the API refuses is a 400 in its error shape: a quoted date, an
// unknown property, a property that exists but is not filterable, an enum member it lacks,
// $top above 100, and the query options it does not document.
func TestIncidentsQuery(t *testing.T) {
	s, tok := xdrServer(t, defendertest.Options{}, 30)
	s.UpdateIncident("924525", graphBase.Add(2*time.Hour), -1) // the 5th: Active, InProgress or Resolved
	for _, tt := range []struct {
		name, query string
		want        int // incidents, or -1 for a 400
		msg         string
	}{
		{"range", q("lastUpdateTime ge " + at(10) + " and lastUpdateTime lt " + at(20)), 10, ""},
		{"created", q("createdTime le " + at(4)), 4, ""},                                     // the 5th is 0.1234 s past
		{"7 fractional digits", q("lastUpdateTime ge 2026-01-01T00:10:00.0000000Z"), 21, ""}, // and the updated 5th
		{"status", q("status eq 'Active'"), -2, ""},
		{"assignedTo", q("assignedTo eq 'nobody@contoso.com'"), 0, ""},
		{"top 100", "$top=100", 30, ""},
		{"skip", "$top=100&$skip=25", 5, ""},
		{"quoted date", q("lastUpdateTime ge '" + at(10) + "'"), -1, "incompatible types"},
		{"unknown property", q("lastUpdatedTime ge " + at(10)), -1, "Could not find a property named 'lastUpdatedTime'"},
		{"not filterable", q("severity eq 'High'"), -1, "cannot be used in the $filter"},
		{"incidentId not filterable", q("incidentId gt 924521"), -1, "cannot be used in the $filter"},
		{"unknown status", q("status eq 'New'"), -1, "not a valid enumeration"},
		{"bare status", q("status eq Active"), -1, "string literal expected"},
		{"bad date", q("lastUpdateTime ge 2026-01-01"), -1, "not a valid Edm.DateTimeOffset"},
		{"top above 100", "$top=101", -1, "The limit of '100' for Top query has been exceeded"},
		{"orderby", "$orderby=lastUpdateTime", -1, "'orderby' is not allowed"},
		{"expand", "$expand=alerts", -1, "'expand' is not allowed"},
		{"count", "$count=true", -1, "'count' is not allowed"},
		{"unknown argument", "top=5", -1, "Unrecognized query argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := xget(t, s.URL+"/api/incidents?"+tt.query, tok)
			if tt.want == -1 {
				if status != 400 {
					t.Fatalf("got %d, want 400", status)
				}
				wantXDRError(t, body, "BadRequest", tt.msg)
				return
			}
			if status != 200 {
				t.Fatalf("got %d %s", status, body)
			}
			got := xlist(t, s, tok, tt.query)
			if tt.want == -2 { // status: every incident but the updated one is Active
				if n := len(got); n != 29 && n != 30 {
					t.Errorf("%d Active incidents, want 29 or 30", n)
				}
				for _, in := range got {
					if in.Status != "Active" {
						t.Errorf("incident %s is %s", in.ID, in.Status)
					}
				}
				return
			}
			if len(got) != tt.want {
				t.Errorf("%d incidents, want %d", len(got), tt.want)
			}
		})
	}
}

// 50 calls a minute by default (and 1,500 an hour), then 429 with Retry-After; the hour's
// quota holds too.
func TestIncidentsQuota(t *testing.T) {
	s, tok := xdrServer(t, defendertest.Options{}, 2)
	if pm, ph := s.Quotas(); pm != 50 || ph != 1500 {
		t.Errorf("quotas %d/min %d/h, want 50 and 1500", pm, ph)
	}
	u := s.URL + "/api/incidents"
	for i := 0; i < 50; i++ {
		if status, _, body := xget(t, u, tok); status != 200 {
			t.Fatalf("call %d: %d %s", i+1, status, body)
		}
	}
	status, h, body := xget(t, u, tok)
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("call 51: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	wantXDRError(t, body, "TooManyRequests", "50 per 60 seconds, 1500 per 3600 seconds")

	hs, htok := xdrServer(t, defendertest.Options{Minute: time.Millisecond, PerHour: 5}, 2)
	for i := 0; i < 5; i++ {
		time.Sleep(2 * time.Millisecond)
		if status, _, _ := xget(t, hs.URL+"/api/incidents", htok); status != 200 {
			t.Fatalf("call %d: %d", i+1, status)
		}
	}
	if status, _, _ := xget(t, hs.URL+"/api/incidents", htok); status != 429 {
		t.Errorf("call 6 past the hour's quota: %d", status)
	}
}

// nested returns an incident's alerts as rendered now, by alertId.
func nested(t *testing.T, s *defendertest.Server, tok, id string) (xincident, map[string]string) {
	t.Helper()
	for _, in := range xlist(t, s, tok, "$top=100") {
		if in.ID.String() == id {
			m := map[string]string{}
			for _, a := range in.Alerts {
				var al xalert
				_ = json.Unmarshal(a, &al)
				m[al.AlertID] = string(a)
			}
			return in, m
		}
	}
	t.Fatalf("incident %s not listed", id)
	return xincident{}, nil
}

// An incident update may leave its nested alerts exactly as they were (byte for byte) while
// its lastUpdateTime moves, or change one of them (a new lastUpdatedTime); Update mixes both.
func TestIncidentsUpdatesAndNestedAlerts(t *testing.T) {
	s, tok := xdrServer(t, defendertest.Options{Seed: 5}, 25) // the 25th groups 50 alerts
	const id = "924545"
	before, alerts0 := nested(t, s, tok, id)
	if len(alerts0) != defendertest.IncidentBigSize {
		t.Fatalf("incident %s has %d alerts", id, len(alerts0))
	}
	t1 := graphBase.Add(3 * time.Hour)
	s.UpdateIncident(id, t1, -1)
	after, alerts1 := nested(t, s, tok, id)
	if after.LastUpdate == before.LastUpdate || after.LastUpdate != defendertest.FormatTime(t1) {
		t.Errorf("lastUpdateTime %s -> %s, want %s", before.LastUpdate, after.LastUpdate, defendertest.FormatTime(t1))
	}
	for aid, raw := range alerts0 {
		if alerts1[aid] != raw {
			t.Errorf("alert %s changed on an incident-only update", aid)
		}
	}
	t2 := t1.Add(time.Minute)
	s.UpdateIncident(id, t2, 7)
	_, alerts2 := nested(t, s, tok, id)
	changed := 0
	for aid, raw := range alerts1 {
		if alerts2[aid] != raw {
			changed++
			var al xalert
			_ = json.Unmarshal([]byte(alerts2[aid]), &al)
			if al.LastUpdated != defendertest.FormatTime(t2) {
				t.Errorf("changed alert %s: lastUpdatedTime %s, want %s", aid, al.LastUpdated, defendertest.FormatTime(t2))
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d alerts changed, want 1", changed)
	}
	if nv := s.NestedAlerts(id, t1); nv[7].LastUpdated.Equal(t2) {
		t.Error("NestedAlerts as of the earlier version shows the later change")
	}
	// Random updates: some leave the alerts alone, some change one.
	only, one := 0, 0
	for i := 0; i < 40; i++ {
		before := map[string]int{}
		for _, x := range s.IDs() {
			before[x] = len(s.Versions(x))
		}
		s.Update(1)
		for _, x := range s.IDs() {
			v := s.Versions(x)
			if len(v) == before[x] {
				continue
			}
			if slices.Equal(s.NestedAlerts(x, v[len(v)-2].LastUpdate), s.NestedAlerts(x, v[len(v)-1].LastUpdate)) {
				only++
			} else {
				one++
			}
		}
	}
	if only == 0 || one == 0 {
		t.Errorf("random updates: %d left the alerts alone, %d changed one; want both kinds", only, one)
	}
}

// Updates while a client pages shift the $skip pages (an incident moves to the top), and a new
// version stays invisible until its visibility delay has passed on the service's clock.
func TestIncidentsUpdatesWhilePagingAndLateVisibility(t *testing.T) {
	s, tok := xdrServer(t, defendertest.Options{Seed: 9}, 40)
	s.UpdatesPerCall(3)
	seen := map[string]int{}
	for skip := 0; skip < 40; skip += 10 {
		for _, in := range xlist(t, s, tok, "$top=10&$skip="+itoa(skip)) {
			seen[in.ID.String()]++
		}
	}
	if n := s.Stats().Updates; n < 9 {
		t.Errorf("%d updates while paging", n)
	}
	twice, missed := 0, 0
	for _, id := range s.IDs() {
		switch seen[id] {
		case 0:
			missed++
		case 1:
		default:
			twice++
		}
	}
	if twice == 0 && missed == 0 {
		t.Error("updates while paging shifted nothing: a $skip walk saw every incident exactly once")
	}
	s.UpdatesPerCall(0)

	var clock atomic.Int64 // the service's clock, read by its handlers
	clock.Store(graphBase.Add(10 * time.Hour).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	l, ltok := xdrServer(t, defendertest.Options{Now: now}, 3)
	l.SetVisibilityDelay(func(*mrand.Rand) time.Duration { return 5 * time.Minute })
	t0 := now()
	l.UpdateIncident("924521", t0, 0)
	if in := xlist(t, l, ltok, q("lastUpdateTime ge "+defendertest.FormatTime(t0))); len(in) != 0 {
		t.Errorf("a version visible before its delay: %v", in)
	}
	clock.Add(int64(5 * time.Minute))
	if in := xlist(t, l, ltok, q("lastUpdateTime ge "+defendertest.FormatTime(t0))); len(in) != 1 || in[0].ID.String() != "924521" {
		t.Errorf("after the delay: %v", in)
	}
}

func TestParseModeIncidents(t *testing.T) {
	m, err := defendertest.ParseMode("incidents")
	if err != nil || m != defendertest.IncidentsMode || m.String() != "incidents" {
		t.Errorf("got %v %v", m, err)
	}
}
