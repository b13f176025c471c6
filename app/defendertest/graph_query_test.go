package defendertest_test

import (
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/defendertest/dtest"
)

// listAll follows nextLinks from u and returns every page.
func listAll(t *testing.T, u, tok string, hdr ...string) []gpage {
	t.Helper()
	var pages []gpage
	for u != "" {
		status, _, body := graphGet(t, u, tok, hdr...)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", u, status, body)
		}
		p := decodePage(t, body)
		pages = append(pages, p)
		u = p.Next
		if len(pages) > 1000 {
			t.Fatal("nextLinks never end")
		}
	}
	return pages
}

func ids(pages ...gpage) []string {
	var out []string
	for _, p := range pages {
		for _, a := range p.Value {
			out = append(out, a.ID)
		}
	}
	return out
}

func body(t *testing.T, u, tok string) []byte {
	t.Helper()
	status, _, b := graphGet(t, u, tok)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", u, status, b)
	}
	return b
}

func tokenFor(t *testing.T, s *defendertest.Server) string {
	return dtest.TokenFor(t, s, tTenant, tClient, "pw")
}

func itoa(n int) string { return strconv.Itoa(n) }

// alertIDs lists one Alert API page's ids.
func alertIDs(t *testing.T, u, tok string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	out := []string{}
	for _, a := range p.Value {
		out = append(out, a.ID)
	}
	return out
}

func at(min int) string {
	return defendertest.FormatTime(graphBase.Add(time.Duration(min) * time.Minute))
}

// $filter selects what its grammar says, and refuses what Graph refuses with a 400 in Graph's
// shape: quoted dates, unknown or unfilterable properties, bare or unknown enum members.
func TestGraphFilter(t *testing.T) {
	s, tok := graphServer(t, defendertest.Options{}, 120)
	s.Update(30)
	all := listAll(t, s.URL+"/v1.0/security/alerts_v2", tok, "Prefer", "include-unknown-enum-members")[0].Value
	ms := func(ts string) time.Time { v, _ := time.Parse(time.RFC3339Nano, ts); return v }
	for _, tt := range []struct {
		name    string
		filter  string
		want    func(a galert) bool // nil: a 400
		wantMsg string
	}{
		{"date range", "lastUpdateDateTime ge " + at(10) + " and lastUpdateDateTime lt " + at(30),
			func(a galert) bool {
				return !ms(a.LastUpdate).Before(ms(at(10))) && ms(a.LastUpdate).Before(ms(at(30)))
			}, ""},
		{"gt with 7 digits", "lastUpdateDateTime gt 2026-01-01T00:50:00.1234567Z",
			func(a galert) bool { return ms(a.LastUpdate).After(ms("2026-01-01T00:50:00.1234567Z")) }, ""},
		{"offset date", "createdDateTime le 2026-01-01T02:00:00+01:00",
			func(a galert) bool { return !ms(a.Created).After(ms(at(60))) }, ""},
		{"or of sources", "serviceSource eq 'microsoftDefenderForOffice365' or serviceSource eq 'microsoftDefenderForCloud'",
			func(a galert) bool {
				return a.ServiceSource == "microsoftDefenderForOffice365" || a.ServiceSource == "microsoftDefenderForCloud"
			}, ""},
		{"not and parentheses", "not (serviceSource eq 'microsoftDefenderForEndpoint') and (status eq 'new' or severity eq 'high')",
			func(a galert) bool {
				return a.ServiceSource != "microsoftDefenderForEndpoint" && (a.Status == "new" || a.Severity == "high")
			}, ""},
		{"ne", "status ne 'new'", func(a galert) bool { return a.Status != "new" }, ""},
		{"assignedTo null", "assignedTo eq null", func(a galert) bool { return a.AssignedTo == nil }, ""},
		{"and binds tighter than or", "severity eq 'high' or severity eq 'low' and status eq 'resolved'",
			func(a galert) bool { return a.Severity == "high" || (a.Severity == "low" && a.Status == "resolved") }, ""},
		{"quoted date", "lastUpdateDateTime gt '" + at(10) + "'", nil, "Found operand types 'Edm.DateTimeOffset' and 'Edm.String'"},
		{"unknown property", "investigationState eq 'Queued'", nil, "Could not find a property named 'investigationState'"},
		{"Alert API property", "lastUpdateTime gt " + at(10), nil, "Could not find a property named 'lastUpdateTime'"},
		{"unfilterable property", "title eq 'x'", nil, "not supported in $filter"},
		{"bare enum", "status eq new", nil, "Could not find a property named 'new'"},
		{"Alert API casing", "status eq 'New'", nil, "not a valid enumeration type constant"},
		{"range on enum", "severity gt 'low'", nil, "not supported"},
		{"unknown operator", "serviceSource has 'x'", nil, "operator 'has'"},
		{"8 digits", "lastUpdateDateTime gt 2026-01-01T00:50:00.12345678Z", nil, "not a valid Edm.DateTimeOffset"},
		{"unclosed", "(status eq 'new'", nil, "')' expected"},
		{"not without parentheses", "not status eq 'new'", nil, "parenthesized"},
		{"trailing", "status eq 'new' status", nil, "syntax error"},
		{"empty", "", nil, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := s.URL + "/v1.0/security/alerts_v2?$filter=" + url.QueryEscape(tt.filter)
			if tt.want == nil {
				status, _, body := graphGet(t, u, tok, "client-request-id", "c0ffee00-0000-4000-8000-000000000002")
				if status != 400 {
					t.Fatalf("got %d, want 400", status)
				}
				wantGraphError(t, body, "BadRequest", tt.wantMsg, "c0ffee00-0000-4000-8000-000000000002")
				return
			}
			var want []string
			for _, a := range all {
				if tt.want(a) {
					want = append(want, a.ID)
				}
			}
			got := ids(listAll(t, u, tok, "Prefer", "include-unknown-enum-members")...)
			if len(want) == 0 || len(want) == len(all) {
				t.Fatalf("the case selects %d of %d alerts: it proves nothing", len(want), len(all))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("got %d alerts, want %d", len(got), len(want))
			}
		})
	}
}

// $top above 1000 is cut to 1000 without a word; with no $top the page is GraphPageSize;
// $skip passes over; a full page carries a nextLink, and following the links yields every
// alert once.
func TestGraphTopSkipAndNextLink(t *testing.T) {
	big, tok := graphServer(t, defendertest.Options{}, 1100)
	small, stok := graphServer(t, defendertest.Options{GraphPageSize: 300}, 700)
	for _, tt := range []struct {
		name      string
		small     bool // the server whose default page is 300
		query     string
		wantPages []int // page sizes, following the links
		status    int
	}{
		{"top 5000 is cut to 1000", false, "$top=5000", []int{1000, 100}, 200},
		{"default page", false, "", []int{1000, 100}, 200},
		{"default page set", true, "", []int{300, 300, 100}, 200},
		{"top 200", true, "$top=200", []int{200, 200, 200, 100}, 200},
		{"skip", true, "$top=300&$skip=100", []int{300, 300, 0}, 200}, // the rest fills a page: an empty one follows
		{"skip to the end", true, "$top=600&$skip=650", []int{50}, 200},
		{"top 0", false, "$top=0", []int{0}, 200},
		{"negative top", false, "$top=-1", nil, 400},
		{"top twice", false, "$top=10&$top=20", nil, 400},
		{"orderby", false, "$orderby=lastUpdateDateTime", nil, 400},
		{"Alert API option", false, "$expand=evidence", nil, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, tok := big, tok
			if tt.small {
				s, tok = small, stok
			}
			u := s.URL + "/v1.0/security/alerts_v2?" + tt.query
			if tt.status != 200 {
				status, _, body := graphGet(t, u, tok)
				if status != tt.status {
					t.Fatalf("got %d %s, want %d", status, body, tt.status)
				}
				wantGraphError(t, body, "BadRequest", "", "")
				return
			}
			var sizes []int
			seen := map[string]bool{}
			for link := u; link != "" && len(sizes) < 20; {
				status, _, body := graphGet(t, link, tok)
				var p struct {
					Next  string `json:"@odata.nextLink"`
					Value []struct {
						ID string `json:"id"`
					} `json:"value"`
				}
				if err := json.Unmarshal(body, &p); err != nil || status != 200 {
					t.Fatalf("GET %s: %d %v", link, status, err)
				}
				for _, a := range p.Value {
					if seen[a.ID] {
						t.Fatalf("%s twice", a.ID)
					}
					seen[a.ID] = true
				}
				sizes = append(sizes, len(p.Value))
				if len(sizes) == 1 && tt.query == "$top=5000" && !strings.Contains(p.Next, "$top=1000") {
					t.Errorf("nextLink %q does not repeat the page size", p.Next)
				}
				link = p.Next
			}
			if !slices.Equal(sizes, tt.wantPages) {
				t.Errorf("pages of %v, want %v", sizes, tt.wantPages)
			}
		})
	}
}

// A $skiptoken is honoured for SkipTokenLifetime (on the service's clock) and then, like an
// unknown one, is a 400.
func TestGraphSkipTokenExpires(t *testing.T) {
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		expire bool
		mangle bool
		status int
	}{
		{"fresh", 0, false, false, 200},
		{"just before its lifetime ends", 10*time.Minute - time.Nanosecond, false, false, 200},
		{"after its lifetime", 10 * time.Minute, false, false, 400},
		{"expired by the server", 0, true, false, 400},
		{"unknown", 0, false, true, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(graphBase.Add(time.Hour).UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
			s, tok := graphServer(t, defendertest.Options{SkipTokenLifetime: 10 * time.Minute, Now: now}, 30)
			_, _, body := graphGet(t, s.URL+"/v1.0/security/alerts_v2?$top=10", tok)
			next := decodePage(t, body).Next
			if next == "" {
				t.Fatal("no nextLink on a full page")
			}
			clock.Add(int64(tt.wait))
			if tt.expire {
				s.ExpireSkipTokens()
			}
			if tt.mangle {
				next += "x"
			}
			status, _, body := graphGet(t, next, tok)
			if status != tt.status {
				t.Fatalf("got %d %s, want %d", status, body, tt.status)
			}
			if status == 400 {
				wantGraphError(t, body, "invalidRequest", "$skiptoken", "")
			}
		})
	}
}

// 150 calls a minute by default, then 429 with Retry-After in seconds, in Graph's shape; and
// Unavailable's 503 with Retry-After.
func TestGraphQuotaAndUnavailable(t *testing.T) {
	s, tok := graphServer(t, defendertest.Options{}, 5)
	if pm, ph := s.Quotas(); pm != 150 || ph < 1<<30 {
		t.Errorf("quotas %d/min %d/h, want 150 and none", pm, ph)
	}
	u := s.URL + "/v1.0/security/alerts_v2"
	for i := 0; i < 150; i++ {
		if status, _, body := graphGet(t, u, tok); status != 200 {
			t.Fatalf("call %d: %d %s", i+1, status, body)
		}
	}
	status, h, body := graphGet(t, u, tok)
	if status != 429 || h.Get("Retry-After") == "" || strings.ContainsAny(h.Get("Retry-After"), " :") {
		t.Fatalf("call 151: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	wantGraphError(t, body, "TooManyRequests", "Retry after", "")

	s2, tok2 := graphServer(t, defendertest.Options{}, 5)
	s2.Unavailable(1, 2*time.Second)
	status, h, body = graphGet(t, s2.URL+"/v1.0/security/alerts_v2", tok2)
	if status != 503 || h.Get("Retry-After") != "2" {
		t.Fatalf("got %d, Retry-After %q, want 503 and 2", status, h.Get("Retry-After"))
	}
	wantGraphError(t, body, "serviceNotAvailable", "", "")
	if status, _, _ := graphGet(t, s2.URL+"/v1.0/security/alerts_v2", tok2); status != 200 {
		t.Errorf("after the 503: %d", status)
	}
}

// Alerts updated while a client pages shift the pages behind a nextLink exactly as they
// shift $skip pages of the Alert API: the same seed and updates give the same pages.
func TestGraphUpdatesWhilePaging(t *testing.T) {
	const n, top, perCall = 60, 10, 4
	g, gtok := graphServer(t, defendertest.Options{Seed: 3}, n)
	a := defendertest.New(defendertest.Options{TenantID: tTenant, ClientID: tClient, ClientSecret: "pw", Seed: 3})
	defer a.Close()
	a.AddAlerts(n, func(i int) time.Time { return graphBase.Add(time.Duration(i)*time.Minute + fraction(i)) })
	atok := tokenFor(t, a)
	g.UpdatesPerCall(perCall)
	a.UpdatesPerCall(perCall)
	gpages := listAll(t, g.URL+"/v1.0/security/alerts_v2?$top=10", gtok)
	var apages [][]string
	for skip := 0; ; skip += top {
		got := alertIDs(t, a.URL+"/api/alerts?$top=10&$skip="+itoa(skip), atok)
		apages = append(apages, got)
		if len(got) < top {
			break
		}
	}
	if len(gpages) != len(apages) {
		t.Fatalf("%d Graph pages, %d Alert API pages", len(gpages), len(apages))
	}
	distinct := map[string]bool{}
	for i := range gpages {
		if got := ids(gpages[i]); !slices.Equal(got, apages[i]) {
			t.Errorf("page %d: Graph %v, Alert API %v", i, got, apages[i])
		}
		for _, id := range ids(gpages[i]) {
			distinct[id] = true
		}
	}
	if len(distinct) == n {
		t.Errorf("paging saw all %d alerts once: updates did not shift the pages", n)
	}
}

// $count=true adds @odata.count, the filter's total, to the first page only.
func TestGraphCount(t *testing.T) {
	s, tok := graphServer(t, defendertest.Options{}, 50)
	pages := listAll(t, s.URL+"/v1.0/security/alerts_v2?$count=true&$top=20&$filter="+url.QueryEscape("lastUpdateDateTime lt "+at(45)), tok)
	show := func(c *int) string {
		if c == nil {
			return "none"
		}
		return itoa(*c)
	}
	if len(pages) != 3 || show(pages[0].Count) != "45" || show(pages[1].Count) != "none" {
		t.Errorf("%d pages, first count %s, second %s; want 3 pages, 45 on the first only", len(pages), show(pages[0].Count), show(pages[1].Count))
	}
}

// The shared machinery applies in GraphMode: late visibility and injected 500s.
func TestGraphSharedAdversity(t *testing.T) {
	var clock atomic.Int64
	clock.Store(graphBase.Add(time.Hour).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	s, tok := graphServer(t, defendertest.Options{Now: now}, 0)
	s.SetVisibilityDelay(func(*mrand.Rand) time.Duration { return 10 * time.Minute })
	s.AddAlerts(5, func(i int) time.Time { return now() })
	u := s.URL + "/v1.0/security/alerts_v2"
	if p := decodePage(t, body(t, u, tok)); len(p.Value) != 0 {
		t.Errorf("%d alerts visible before their delay", len(p.Value))
	}
	clock.Add(int64(11 * time.Minute))
	if p := decodePage(t, body(t, u, tok)); len(p.Value) != 5 {
		t.Errorf("%d alerts visible after their delay, want 5", len(p.Value))
	}
	s.FailEvery(1)
	status, _, b := graphGet(t, u, tok)
	if status != 500 {
		t.Fatalf("got %d, want 500", status)
	}
	wantGraphError(t, b, "generalException", "", "")
}
