package wiring

import (
	"context"
	"encoding/json"
	mrand "math/rand/v2"
	"testing"
	"time"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// graphEvent is what these tests read of a Graph alert event.
type graphEvent struct {
	ID            string    `json:"id"`
	LastUpdate    time.Time `json:"lastUpdateDateTime"`
	ServiceSource string    `json:"serviceSource"`
}

func graphKey(b []byte) string {
	var e graphEvent
	if json.Unmarshal(b, &e) != nil || e.ID == "" {
		return "unreadable " + string(b)
	}
	return e.ID + " " + e.LastUpdate.UTC().Format(time.RFC3339Nano)
}

// graphTenant is a Graph stand-in holding n alerts of the last hour, and the graph-alerts
// feed's configuration reading it into a new HEC stand-in with acks.
func graphTenant(t *testing.T, n int, opts ...func(*defendertest.Options)) (*config.Config, *defendertest.Server, *hectest.Server) {
	t.Helper()
	opt := defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV, Mode: defendertest.GraphMode}
	for _, o := range opts {
		o(&opt)
	}
	api := defendertest.New(opt)
	t.Cleanup(api.Close)
	now := time.Now()
	api.AddAlerts(n, func(i int) time.Time { return now.Add(-time.Hour).Add(time.Duration(i) * time.Second) })
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true, Key: graphKey})
	t.Cleanup(h.Close)
	cfg := &config.Config{Output: "hec", Input: "tenant1.graph-alerts", Feed: "graph-alerts", StateDir: t.TempDir(), Start: 2 * time.Hour, Overlap: time.Minute,
		Linger:   20 * time.Millisecond,
		Defender: defender.Config{Feed: "graph-alerts", TenantID: tenant, ClientID: client, ClientSecret: secretV, APIURL: api.URL, LoginURL: api.URL},
		HEC:      hec.Config{URLs: []string{h.URL}, Token: hecToken, Sourcetype: "ms:defender:graph:alerts", Source: "tenant1", AckInterval: 10 * time.Millisecond}}
	return cfg, api, h
}

func drainOnce(t *testing.T, cfg *config.Config) *Collector {
	t.Helper()
	c, err := New(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Pump.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// The graph-alerts feed reads Graph's alerts_v2 at its largest page (1,000), with alerts
// changing while it pages, into HEC: every version current at the end is indexed, once, under
// the feed's sourcetype.
func TestGraphFeedToHEC(t *testing.T) {
	cfg, api, h := graphTenant(t, 2500)
	api.UpdatesPerCall(5)
	drainOnce(t, cfg)
	api.UpdatesPerCall(0)
	time.Sleep(10 * time.Millisecond) // the next window's end lies past every update
	drainOnce(t, cfg)

	for id, v := range api.Current(time.Now()) {
		if n := h.Count(id + " " + v.LastUpdate.UTC().Format(time.RFC3339Nano)); n != 1 {
			t.Errorf("alert %s as of %s indexed %d times, want once", id, v.LastUpdate.Format(time.RFC3339Nano), n)
		}
	}
	st := h.Stats()
	if st.Duplicates != 0 || st.Distinct < 2500 {
		t.Errorf("HEC: %d distinct versions, %d duplicates; want at least 2500 and none", st.Distinct, st.Duplicates)
	}
	for _, e := range h.Events() {
		if e.Sourcetype != "ms:defender:graph:alerts" {
			t.Fatalf("an event under sourcetype %q", e.Sourcetype)
		}
	}
	t.Logf("%d calls to Graph", api.Stats().APICalls)
	if calls := api.Stats().APICalls; calls > 20 {
		t.Errorf("%d calls to Graph for 2,500 alerts and two windows", calls)
	}
}

// Graph may end a page short of $top and name the rest with @odata.nextLink: such a page is
// not the end of its query. With pages cut to 300 (and 137: probes and tie reads cut too),
// under every list order the stand-in has, every alert is still indexed once.
func TestGraphShortPagesWithNextLink(t *testing.T) {
	for _, cutAt := range []int{300, 137} {
		for _, order := range []defendertest.Order{defendertest.NewestFirst, defendertest.Shuffled, defendertest.NewestCreatedFirst, defendertest.OldestFirst} {
			cfg, api, h := graphTenant(t, 1000, func(o *defendertest.Options) { o.GraphShortPage = cutAt })
			t.Logf("pages cut at %d, order %v", cutAt, order)
			api.SetOrder(order)
			drainOnce(t, cfg)
			for id, v := range api.Current(time.Now()) {
				if n := h.Count(id + " " + v.LastUpdate.UTC().Format(time.RFC3339Nano)); n != 1 {
					t.Fatalf("pages cut at %d, order %v: alert %s indexed %d times, want once (HEC holds %d)", cutAt, order, id, n, h.Stats().Distinct)
				}
			}
		}
	}
}

// A Graph that answers $skip past 500 with an empty page (as the legacy security alerts API's
// limit would) loses nothing: the client's pages and probes keep within it, whatever the order.
func TestGraphSkipLimit(t *testing.T) {
	for _, order := range []defendertest.Order{defendertest.NewestFirst, defendertest.Shuffled, defendertest.NewestCreatedFirst} {
		cfg, api, h := graphTenant(t, 2500, func(o *defendertest.Options) { o.GraphMaxSkip = 500 })
		api.SetOrder(order)
		drainOnce(t, cfg)
		if st := h.Stats(); st.Distinct != 2500 || st.Duplicates != 0 {
			t.Errorf("order %v: HEC holds %d distinct, %d duplicates; want 2500 and none", order, st.Distinct, st.Duplicates)
		}
		t.Logf("order %v: %d calls", order, api.Stats().APICalls)
	}
}

// DEFENDER_GRAPH_EXCLUDE_SOURCES leaves out every alert of the named service sources, and
// only those.
func TestGraphFeedExcludesSources(t *testing.T) {
	cfg, api, all := graphTenant(t, 600)
	drainOnce(t, cfg)
	bySource := map[string]int{}
	for _, e := range all.Events() {
		var g graphEvent
		if err := json.Unmarshal(e.Raw, &g); err != nil {
			t.Fatal(err)
		}
		bySource[g.ServiceSource]++
	}
	if bySource["microsoftDefenderForEndpoint"] == 0 || len(bySource) < 3 {
		t.Fatalf("the stand-in's mix: %v", bySource)
	}

	h := hectest.New(hectest.Options{Token: hecToken, Ack: true, Key: graphKey})
	t.Cleanup(h.Close)
	cfg.HEC.URLs, cfg.StateDir = []string{h.URL}, t.TempDir()
	cfg.ExcludeSources = []string{"microsoftDefenderForEndpoint"}
	c := drainOnce(t, cfg)
	got := map[string]int{}
	for _, e := range h.Events() {
		var g graphEvent
		if err := json.Unmarshal(e.Raw, &g); err != nil {
			t.Fatal(err)
		}
		got[g.ServiceSource]++
	}
	want := 600 - bySource["microsoftDefenderForEndpoint"]
	if got["microsoftDefenderForEndpoint"] != 0 || len(h.Events()) != want {
		t.Errorf("with Defender for Endpoint left out: %v (%d events), want %d and none of it", got, len(h.Events()), want)
	}
	if st, err := c.Store.Load(); err != nil || st == nil || st.Window != nil {
		t.Errorf("checkpoint %+v (%v): the window is not done", st, err)
	}
	_ = api
}

// The Graph feed under the stand-in's adversities at once: bulk updates sharing one
// lastUpdateDateTime (groups larger than a page), alerts changing while it pages, versions
// visible up to 300 ms late, 429s with Retry-After, 500s and replies cut off mid-body. After the
// adversity stops, one more poll: every current version indexed once, none twice.
func TestGraphFeedUnderAdversity(t *testing.T) {
	// Graph's quota of 150 calls a minute, on a minute shrunk to 500 ms on both sides.
	cfg, api, h := graphTenant(t, 0, func(o *defendertest.Options) { o.Minute = 500 * time.Millisecond })
	cfg.Defender.Limits = defender.Limits{PerMinute: 150, Minute: 500 * time.Millisecond}
	cfg.Defender.BackoffInitial, cfg.Defender.BackoffMax = 10*time.Millisecond, 100*time.Millisecond
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	ids := api.AddAlerts(3000, func(i int) time.Time { return base.Add(time.Duration(i) * 300 * time.Millisecond) })
	api.UpdateAt(ids[:700], base.Add(20*time.Minute)) // bulk updates: 700 and 800 alerts share one lastUpdateDateTime
	api.UpdateAt(ids[1000:1800], base.Add(25*time.Minute))
	api.UpdatesPerCall(4)
	api.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(300 * time.Millisecond))) })
	api.SetFailures(0.05, 0.05)
	api.Throttle(2, time.Second)
	cfg.Overlap = 2 * time.Second
	c, err := New(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Pump.Drain(context.Background())
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	api.UpdatesPerCall(0)
	api.SetFailures(0, 0)
	time.Sleep(400 * time.Millisecond) // every version visible; the next window ends past them
	drainOnce(t, cfg)
	missing := 0
	for id, v := range api.Current(time.Now()) {
		if h.Count(id+" "+v.LastUpdate.UTC().Format(time.RFC3339Nano)) == 0 {
			missing++
		}
	}
	st, as := h.Stats(), api.Stats()
	t.Logf("%d versions indexed, %d duplicates, %d missing; %d calls (%v), %d updates, %d calls before a Retry-After had passed", st.Distinct, st.Duplicates, missing, as.APICalls, as.ByStatus, as.Updates, as.Violations)
	if as.Violations != 0 {
		t.Errorf("%d calls came before a Retry-After had passed", as.Violations)
	}
	if missing != 0 || st.Duplicates != 0 {
		t.Errorf("%d current versions missing, %d duplicates", missing, st.Duplicates)
	}
}
