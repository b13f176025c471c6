package defendertest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/defendertest/dtest"
)

const graphScope = defendertest.GraphGlobal + "/.default"

type galert struct {
	ID              string           `json:"id"`
	LastUpdate      string           `json:"lastUpdateDateTime"`
	Created         string           `json:"createdDateTime"`
	FirstActivity   string           `json:"firstActivityDateTime"`
	ServiceSource   string           `json:"serviceSource"`
	DetectionSource string           `json:"detectionSource"`
	Status          string           `json:"status"`
	Severity        string           `json:"severity"`
	AssignedTo      *string          `json:"assignedTo"`
	IncidentID      string           `json:"incidentId"`
	Evidence        []map[string]any `json:"evidence"`
}

type gpage struct {
	Count *int     `json:"@odata.count"`
	Next  string   `json:"@odata.nextLink"`
	Value []galert `json:"value"`
}

type gerror struct {
	Error struct {
		Code       string            `json:"code"`
		Message    string            `json:"message"`
		InnerError map[string]string `json:"innerError"`
	} `json:"error"`
}

// graphServer starts a stand-in in GraphMode with n alerts a minute apart, their times with
// 0 to 7 fractional digits, and returns it with a Graph token.
func graphServer(t *testing.T, opt defendertest.Options, n int) (*defendertest.Server, string) {
	t.Helper()
	opt.Mode, opt.TenantID, opt.ClientID, opt.ClientSecret = defendertest.GraphMode, tTenant, tClient, "pw"
	s := defendertest.New(opt)
	t.Cleanup(s.Close)
	s.AddAlerts(n, func(i int) time.Time { return graphBase.Add(time.Duration(i)*time.Minute + fraction(i)) })
	return s, dtest.TokenForScope(t, s, tTenant, tClient, "pw", graphScope)
}

var graphBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fraction gives the i-th alert a fraction of a second of 0 to 7 digits.
func fraction(i int) time.Duration {
	return []time.Duration{0, 500 * time.Millisecond, 120 * time.Millisecond, 116 * time.Millisecond,
		1234 * 100 * time.Microsecond, 12345 * 10 * time.Microsecond, 123456 * time.Microsecond, 7211305 * 100}[i%8]
}

// graphGet makes a GET with a bearer token (if any) and headers (name, value pairs).
func graphGet(t *testing.T, u, tok string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("GET %s: %d, body not JSON: %v", u, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, raw
}

func decodePage(t *testing.T, body []byte) gpage {
	t.Helper()
	var p gpage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("page: %v", err)
	}
	return p
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// wantGraphError checks Graph's error shape: code, message, and an innerError with a
// request-id, a date and the client-request-id sent.
func wantGraphError(t *testing.T, body []byte, code, msgPart, clientReqID string) {
	t.Helper()
	var e gerror
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body: %v", err)
	}
	in := e.Error.InnerError
	switch {
	case e.Error.Code != code || !strings.Contains(e.Error.Message, msgPart):
		t.Errorf("error %q %q, want %q containing %q", e.Error.Code, e.Error.Message, code, msgPart)
	case !uuidRE.MatchString(in["request-id"]) || in["date"] == "":
		t.Errorf("innerError %v lacks a request-id or date", in)
	case in["client-request-id"] != clientReqID:
		t.Errorf("innerError client-request-id %q, want %q", in["client-request-id"], clientReqID)
	}
}

// Each mode answers its own path only, and Graph's 404 has Graph's shape.
func TestGraphPaths(t *testing.T) {
	for _, tt := range []struct {
		name       string
		mode       defendertest.Mode
		path       string
		wantStatus int
	}{
		{"graph serves alerts_v2", defendertest.GraphMode, "/v1.0/security/alerts_v2", 200},
		{"graph refuses the Alert API path", defendertest.GraphMode, "/api/alerts", 404},
		{"graph refuses the Alert API v1.0 path", defendertest.GraphMode, "/api/v1.0/alerts", 404},
		{"graph refuses beta", defendertest.GraphMode, "/beta/security/alerts_v2", 404},
		{"alert API serves /api/alerts", defendertest.AlertAPIMode, "/api/alerts", 200},
		{"alert API refuses alerts_v2", defendertest.AlertAPIMode, "/v1.0/security/alerts_v2", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := defendertest.New(defendertest.Options{Mode: tt.mode, TenantID: tTenant, ClientID: tClient, ClientSecret: "pw"})
			defer s.Close()
			scope := graphScope
			if tt.mode == defendertest.AlertAPIMode {
				scope = defendertest.Resource + "/.default"
			}
			tok := dtest.TokenForScope(t, s, tTenant, tClient, "pw", scope)
			if tt.mode == defendertest.AlertAPIMode {
				if got := dtest.GetStatus(t, s.URL+tt.path, tok); got != tt.wantStatus {
					t.Errorf("got %d, want %d", got, tt.wantStatus)
				}
				return
			}
			status, _, body := graphGet(t, s.URL+tt.path, tok, "client-request-id", "c0ffee00-0000-4000-8000-000000000001")
			if status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", status, body, tt.wantStatus)
			}
			if status == 404 {
				wantGraphError(t, body, "ResourceNotFound", "Resource not found", "c0ffee00-0000-4000-8000-000000000001")
			}
		})
	}
}

// Graph wants a token for the configured cloud's Graph with SecurityAlert.Read.All: a token
// for the Alert API is another audience (401), a token without the role is 403, and another
// cloud's Graph is not a resource of the tenant.
func TestGraphTokens(t *testing.T) {
	for _, tt := range []struct {
		name       string
		opt        defendertest.Options
		scope      string
		expire     bool
		wantToken  int // the token endpoint's status
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"global graph token", defendertest.Options{}, graphScope, false, 200, 200, "", ""},
		{"alert API token", defendertest.Options{}, defendertest.Resource + "/.default", false, 200, 401, "InvalidAuthenticationToken", "Invalid audience"},
		{"no role", defendertest.Options{NoPermission: true}, graphScope, false, 200, 403, "Forbidden", "SecurityAlert.Read.All"},
		{"expired", defendertest.Options{}, graphScope, true, 200, 401, "InvalidAuthenticationToken", "expired"},
		{"GCC High token", defendertest.Options{GraphHost: defendertest.GraphGCCHigh}, defendertest.GraphGCCHigh + "/.default", false, 200, 200, "", ""},
		{"DoD token", defendertest.Options{GraphHost: defendertest.GraphDoD}, defendertest.GraphDoD + "/.default", false, 200, 200, "", ""},
		{"global scope in GCC High", defendertest.Options{GraphHost: defendertest.GraphGCCHigh}, graphScope, false, 400, 0, "", ""},
		{"GCC High scope in global", defendertest.Options{}, defendertest.GraphGCCHigh + "/.default", false, 400, 0, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt := tt.opt
			opt.Mode, opt.TenantID, opt.ClientID, opt.ClientSecret = defendertest.GraphMode, tTenant, tClient, "pw"
			s := defendertest.New(opt)
			defer s.Close()
			resp, err := http.PostForm(s.URL+"/"+tTenant+"/oauth2/v2.0/token", url.Values{
				"grant_type": {"client_credentials"}, "client_id": {tClient}, "client_secret": {"pw"}, "scope": {tt.scope}})
			if err != nil {
				t.Fatal(err)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if resp.StatusCode != tt.wantToken {
				t.Fatalf("token endpoint: %d, want %d", resp.StatusCode, tt.wantToken)
			}
			if tt.wantToken != 200 {
				return
			}
			if tt.expire {
				s.ExpireTokens()
			}
			status, _, body := graphGet(t, s.URL+"/v1.0/security/alerts_v2", tok.AccessToken)
			if status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", status, body, tt.wantStatus)
			}
			if status != 200 {
				wantGraphError(t, body, tt.wantCode, tt.wantMsg, "")
			}
		})
	}
}

// Alerts carry Graph's field names, a mix of services, polymorphic evidence (a kind the
// client cannot know among them) and times with 0 to 7 fractional digits, for the same
// alerts and versions the store holds.
func TestGraphFields(t *testing.T) {
	s, tok := graphServer(t, defendertest.Options{}, 300)
	s.Update(40)
	status, _, body := graphGet(t, s.URL+"/v1.0/security/alerts_v2", tok, "Prefer", "include-unknown-enum-members")
	if status != 200 {
		t.Fatalf("got %d %s", status, body)
	}
	p := decodePage(t, body)
	if len(p.Value) != 300 {
		t.Fatalf("got %d alerts, want 300", len(p.Value))
	}
	sources, kinds, digits := map[string]int{}, map[string]int{}, map[int]int{}
	cur := s.Current(time.Now())
	fracRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{1,7}))?Z$`)
	for _, a := range p.Value {
		sources[a.ServiceSource]++
		want, ok := cur[a.ID]
		if !ok || a.LastUpdate != defendertest.FormatTime(want.LastUpdate) || a.Status != strings.ToLower(want.Status[:1])+want.Status[1:] {
			t.Errorf("alert %s at %s %s, store has %v", a.ID, a.LastUpdate, a.Status, want)
		}
		for _, ts := range []string{a.LastUpdate, a.Created, a.FirstActivity} {
			m := fracRE.FindStringSubmatch(ts)
			if m == nil {
				t.Fatalf("time %q is not ISO 8601 UTC with at most 7 digits", ts)
			}
			digits[len(m[2])]++
		}
		if a.Severity == "" || a.IncidentID == "" || len(a.Evidence) == 0 {
			t.Errorf("alert %s lacks severity, incidentId or evidence", a.ID)
		}
		for _, e := range a.Evidence {
			k, _ := e["@odata.type"].(string)
			kinds[strings.TrimPrefix(k, "#microsoft.graph.security.")]++
		}
	}
	for _, src := range []string{"microsoftDefenderForEndpoint", "microsoftDefenderForOffice365", "microsoftDefenderForIdentity", "microsoftDefenderForCloud"} {
		if sources[src] == 0 {
			t.Errorf("no alert from %s among %v", src, sources)
		}
	}
	for _, k := range []string{"deviceEvidence", "fileEvidence", "mailboxEvidence", "userEvidence", "aiAgentEvidence"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among %v", k, kinds)
		}
	}
	for d := 0; d <= 7; d++ {
		if digits[d] == 0 {
			t.Errorf("no time with %d fractional digits: %v", d, digits)
		}
	}
}

// Enum members after unknownFutureValue come back as unknownFutureValue unless the call sends
// Prefer: include-unknown-enum-members; a nextLink does not carry the header.
func TestGraphPreferUnknownEnumMembers(t *testing.T) {
	s, tok := graphServer(t, defendertest.Options{}, 200)
	count := func(p gpage) (cloud, future int) {
		for _, a := range p.Value {
			switch a.ServiceSource {
			case "microsoftDefenderForCloud":
				cloud++
			case "unknownFutureValue":
				future++
				if a.DetectionSource != "unknownFutureValue" {
					t.Errorf("hidden service source, detectionSource %q shown", a.DetectionSource)
				}
			}
		}
		return cloud, future
	}
	u := s.URL + "/v1.0/security/alerts_v2?$top=100"
	for _, tt := range []struct {
		name      string
		prefer    string
		wantCloud bool
	}{
		{"without", "", false},
		{"with", "include-unknown-enum-members", true},
		{"among others", "odata.maxpagesize=50, Include-Unknown-Enum-Members", true},
		{"another preference", "return=minimal", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.prefer != "" {
				hdr = []string{"Prefer", tt.prefer}
			}
			status, h, body := graphGet(t, u, tok, hdr...)
			if status != 200 {
				t.Fatalf("got %d %s", status, body)
			}
			p := decodePage(t, body)
			cloud, future := count(p)
			if tt.wantCloud != (cloud > 0 && future == 0) || tt.wantCloud == (future > 0) {
				t.Errorf("microsoftDefenderForCloud %d, unknownFutureValue %d; want the member shown: %v", cloud, future, tt.wantCloud)
			}
			if applied := h.Get("Preference-Applied") != ""; applied != tt.wantCloud {
				t.Errorf("Preference-Applied %q", h.Get("Preference-Applied"))
			}
			// The next page, asked without the header, hides the member again.
			if tt.wantCloud {
				_, _, body := graphGet(t, p.Next, tok)
				if cloud, future := count(decodePage(t, body)); cloud > 0 || future == 0 {
					t.Errorf("next page without Prefer: microsoftDefenderForCloud %d, unknownFutureValue %d", cloud, future)
				}
			}
		})
	}
}
