package defender_test

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/loopback"
)

var update = flag.Bool("update", false, "rewrite the golden query files")

// recorder sits between the client and the stand-in and writes down every alert request, in
// order. translate, when set, rewrites a request before it goes on and its reply before it
// comes back (a feed whose API the stand-in does not speak).
type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (rc *recorder) add(s string) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, s)
	rc.mu.Unlock()
}

func (rc *recorder) lines() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.reqs, "\n") + "\n"
}

// goldenScenario drains one window through a recorder: eight alerts, five of them then
// resolved at one time (a tie group larger than the 3-alert page, read apart by creation
// time, with count probes), and a configuration probe. It returns the requests, one a line.
func goldenScenario(t *testing.T, feed string, opt defendertest.Options, proxy func(rc *recorder, next *url.URL) http.Handler) string {
	t.Helper()
	srv := newServer(t, opt)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ids := srv.AddAlerts(8, func(i int) time.Time {
		return base.Add(10*time.Minute + time.Duration(i)*(61*time.Second+250*time.Millisecond))
	})
	srv.UpdateAt(ids[1:6], base.Add(40*time.Minute+500*time.Millisecond))
	next, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recorder{}
	front := loopback.New(proxy(rc, next))
	t.Cleanup(front.Close)
	c := newClient(t, srv, func(c *defender.Config) {
		c.PageSize = 3
		c.APIURL, c.LoginURL = front.URL, front.URL
		c.Feed = feed
	})
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, base, base.Add(time.Hour), l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	if len(r.read) != 8 || r.stats.TieGroups != 1 || r.stats.Probes == 0 {
		t.Errorf("read %d alerts, %d tie groups, %d probes: the scenario no longer shows a tie group and probes", len(r.read), r.stats.TieGroups, r.stats.Probes)
	}
	if n, err := c.Probe(context.Background(), base.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("Probe: %d alerts, %v; want 1", n, err)
	}
	return rc.lines()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := "testdata/queries/" + name + ".golden"
	if *update {
		if err := os.MkdirAll("testdata/queries", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the requests differ from %s; got:\n%s", golden, got)
	}
}

// TestEndpointQueriesGolden pins the exact requests of the endpoint feed: the file was written
// before the dialect seam existed, so the seam changed no byte of them.
func TestEndpointQueriesGolden(t *testing.T) {
	got := goldenScenario(t, "", defendertest.Options{}, recordOnly)
	checkGolden(t, "endpoint-alerts", got)
}

// recordOnly passes every request on, writing down the API's (not the token endpoint's).
func recordOnly(rc *recorder, next *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			rc.add(r.Method + " " + r.URL.RequestURI())
		}
		rp.ServeHTTP(w, r)
	})
}

// graphFront speaks Graph's alerts_v2 to the client in front of the endpoint stand-in: it
// refuses a request without Graph's path or Prefer header, with a $expand, or with $top above
// 1,000, and renames the two time fields both ways. (A stand-in of Graph's own is
// app/defendertest's business; this front only lets the golden file show Graph's requests.)
func graphFront(t *testing.T) func(rc *recorder, next *url.URL) http.Handler {
	return func(rc *recorder, next *url.URL) http.Handler {
		toStandIn := strings.NewReplacer("lastUpdateDateTime", "lastUpdateTime", "createdDateTime", "alertCreationTime")
		toGraph := strings.NewReplacer(`"lastUpdateTime":`, `"lastUpdateDateTime":`, `"alertCreationTime":`, `"createdDateTime":`)
		rp := httputil.NewSingleHostReverseProxy(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				// Graph's scope, which the endpoint stand-in does not know: checked, then swapped.
				if err := r.ParseForm(); err != nil || r.PostForm.Get("scope") != "https://graph.microsoft.com/.default" {
					t.Errorf("token request for scope %q", r.PostForm.Get("scope"))
				}
				r.PostForm.Set("scope", "https://api.securitycenter.microsoft.com/.default")
				form := r.PostForm.Encode()
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(form)), int64(len(form))
				rp.ServeHTTP(w, r)
				return
			}
			rc.add(r.Method + " " + r.URL.RequestURI())
			q, err := url.ParseQuery(r.URL.RawQuery)
			top, _ := strconv.Atoi(q.Get("$top"))
			switch {
			case r.URL.Path != "/v1.0/security/alerts_v2":
				t.Errorf("request to %s", r.URL.Path)
			case r.Header.Get("Prefer") != "include-unknown-enum-members":
				t.Errorf("request without Prefer: include-unknown-enum-members: %q", r.Header.Get("Prefer"))
			case err != nil || q.Has("$expand") || top < 1 || top > 1000:
				t.Errorf("query Graph would not serve as asked: %s", r.URL.RawQuery)
			default:
				q.Set("$filter", toStandIn.Replace(q.Get("$filter")))
				req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, next.String()+"/api/alerts?"+q.Encode(), nil)
				req.Header.Set("Authorization", r.Header.Get("Authorization"))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				w.WriteHeader(resp.StatusCode)
				_, _ = io.WriteString(w, toGraph.Replace(string(body)))
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"code":"BadRequest","message":"refused by the test's Graph front"}}`)
		})
	}
}

// TestGraphQueriesGolden pins the exact requests of the graph-alerts feed for the same window:
// Graph's path and names, no $expand, unquoted times without trailing zeros.
func TestGraphQueriesGolden(t *testing.T) {
	checkGolden(t, "graph-alerts", goldenScenario(t, defender.FeedGraphAlerts, defendertest.Options{}, graphFront(t)))
}

// TestIncidentsQueriesGolden pins the exact requests of the incidents feed for the same
// window, read from the stand-in's IncidentsMode (which refuses what the XDR API refuses):
// /api/incidents, createdTime splitting the tie group, no $expand, unquoted times with 7
// fractional digits, $top within 100.
func TestIncidentsQueriesGolden(t *testing.T) {
	checkGolden(t, "incidents", goldenScenario(t, defender.FeedIncidents, defendertest.Options{Mode: defendertest.IncidentsMode}, recordOnly))
}
