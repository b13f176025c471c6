package wiring

import (
	"context"
	"encoding/json"
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
