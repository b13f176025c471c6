package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Each feed of DEFENDER_FEED gets its own checkpoint, sourcetype, API URL and page size; the
// endpoint feed keeps the input's own checkpoint name, so an upgrade resumes where it was.
func TestForFeed(t *testing.T) {
	tests := []struct {
		name  string
		set   map[string]string
		feeds []string
		want  map[string]Config // per feed: Input, HEC.Sourcetype, Defender.APIURL, Defender.PageSize
	}{
		{name: "default: the endpoint feed alone", feeds: []string{"endpoint-alerts"},
			want: map[string]Config{"endpoint-alerts": feedWant("tenant", "ms:defender:atp:alerts", "", 0)}},
		{name: "two feeds, each its own", set: map[string]string{"DEFENDER_FEED": " Graph-Alerts , endpoint-alerts ", "DEFENDER_REGION": "eu",
			"DEFENDER_GRAPH_EXCLUDE_SOURCES": "microsoftDefenderForEndpoint",
			"DEFENDER_API_URL":               "https://api-eu.securitycenter.microsoft.com", "DEFENDER_GRAPH_URL": "https://graph.example.com"},
			feeds: []string{"graph-alerts", "endpoint-alerts"},
			want: map[string]Config{
				"endpoint-alerts": feedWant("tenant", "ms:defender:atp:alerts", "https://api-eu.securitycenter.microsoft.com", 0),
				"graph-alerts":    feedWant("tenant.graph-alerts", "ms:defender:graph:alerts", "https://graph.example.com", 0),
			}},
		{name: "one feed keeps an explicit sourcetype and page size", set: map[string]string{"DEFENDER_FEED": "graph-alerts",
			"DEFENDER_HEC_SOURCETYPE": "ms:defender:atp:alerts", "DEFENDER_PAGE_SIZE": "500"},
			feeds: []string{"graph-alerts"},
			want:  map[string]Config{"graph-alerts": feedWant("tenant.graph-alerts", "ms:defender:atp:alerts", "", 500)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := good()
			env["DEFENDER_INPUT"] = "tenant"
			for k, v := range tt.set {
				env[k] = v
			}
			setEnv(t, env)
			c, err := FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Feeds, tt.feeds) || c.Feed != tt.feeds[0] {
				t.Fatalf("feeds %v (first %s), want %v", c.Feeds, c.Feed, tt.feeds)
			}
			for _, f := range c.Feeds {
				got, w := c.ForFeed(f), tt.want[f]
				if got.Feed != f || got.Input != w.Input || got.HEC.Sourcetype != w.HEC.Sourcetype ||
					got.Defender.APIURL != w.Defender.APIURL || got.Defender.PageSize != w.Defender.PageSize || got.HEC.Source != "tenant" {
					t.Errorf("%s: input %q sourcetype %q api %q page %d source %q; want %q %q %q %d, source tenant", f, got.Input,
						got.HEC.Sourcetype, got.Defender.APIURL, got.Defender.PageSize, got.HEC.Source,
						w.Input, w.HEC.Sourcetype, w.Defender.APIURL, w.Defender.PageSize)
				}
				// The region and the excluded sources are the graph feed's business alone.
				if got.Defender.Feed != f || (f == "graph-alerts") != (got.Defender.Region == "") && tt.set["DEFENDER_REGION"] != "" ||
					(f != "graph-alerts") && len(got.ExcludeSources) > 0 || f == "graph-alerts" && len(got.ExcludeSources) != len(c.ForFeed(f).ExcludeSources) {
					t.Errorf("%s: feed %q region %q excluded %v", f, got.Defender.Feed, got.Defender.Region, got.ExcludeSources)
				}
			}
			if first := c.ForFeed(c.Feed); first.Input != c.Input || first.HEC.Sourcetype != c.HEC.Sourcetype {
				t.Errorf("the configuration returned is not its first feed's: %q %q", c.Input, c.HEC.Sourcetype)
			}
		})
	}
}

func feedWant(input, sourcetype, api string, page int) Config {
	var c Config
	c.Input, c.HEC.Sourcetype, c.Defender.APIURL, c.Defender.PageSize = input, sourcetype, api, page
	return c
}

// A stanza reads one feed, and its errors name the stanza's parameters.
func TestStanzaFeed(t *testing.T) {
	base := map[string]string{"tenant_id": "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "client_id": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		"client_secret": "sup3r~secret"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := FromParams(with("feed", "graph-alerts", "graph_exclude_sources", "MicrosoftDefenderForEndpoint, microsoftDefenderForIdentity"), t.TempDir(), "contoso")
	if err != nil {
		t.Fatal(err)
	}
	if c.Feed != "graph-alerts" || c.Input != "contoso.graph-alerts" || c.HEC.Sourcetype != "ms:defender:graph:alerts" ||
		!slices.Equal(c.ExcludeSources, []string{"microsoftDefenderForEndpoint", "microsoftDefenderForIdentity"}) {
		t.Errorf("feed %q input %q sourcetype %q excluded %v", c.Feed, c.Input, c.HEC.Sourcetype, c.ExcludeSources)
	}
	for _, tt := range []struct {
		params  map[string]string
		wantVar string
	}{
		{with("feed", "endpoint-alerts,graph-alerts"), "feed"},
		{with("feed", "alerts"), "feed"},
		{with("feed", "graph-alerts", "graph_url", "http://graph.example.com"), "graph_url"},
		{with("graph_exclude_sources", "defender"), "graph_exclude_sources"},
	} {
		_, err := FromParams(tt.params, t.TempDir(), "contoso")
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tt.wantVar {
			t.Errorf("%v: err %v, want it named %s", tt.params, err, tt.wantVar)
		}
	}
}

// The incidents feed: its checkpoint, its two sourcetypes, its own URL override, and the
// Alert API's region only where the XDR API has that region too.
func TestIncidentsFeed(t *testing.T) {
	tests := []struct {
		name       string
		set        map[string]string
		wantErr    string // in the error, or "" for none
		region     string
		sourcetype string
	}{
		{name: "defaults", set: map[string]string{"DEFENDER_FEED": "incidents"}, sourcetype: "ms365:defender:incident"},
		{name: "a region the XDR API has", set: map[string]string{"DEFENDER_FEED": "incidents", "DEFENDER_REGION": "eu"}, region: "eu", sourcetype: "ms365:defender:incident"},
		{name: "an Alert API region it has not: the global host", set: map[string]string{"DEFENDER_FEED": "incidents,endpoint-alerts", "DEFENDER_REGION": "au"}, sourcetype: "ms365:defender:incident"},
		{name: "an explicit sourcetype is the incidents'", set: map[string]string{"DEFENDER_FEED": "incidents", "DEFENDER_HEC_SOURCETYPE": "my:incidents"}, sourcetype: "my:incidents"},
		{name: "not a region at all", set: map[string]string{"DEFENDER_FEED": "incidents", "DEFENDER_REGION": "mars"}, wantErr: "DEFENDER_REGION"},
		{name: "the URL without the feed", set: map[string]string{"DEFENDER_INCIDENTS_URL": "https://x.example.com"}, wantErr: "DEFENDER_INCIDENTS_URL"},
		{name: "syslog output", set: map[string]string{"DEFENDER_FEED": "incidents", "DEFENDER_OUTPUT": "syslog", "DEFENDER_SYSLOG_URL": "tcp://127.0.0.1:6514"}, wantErr: "DEFENDER_FEED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := good()
			env["DEFENDER_INPUT"] = "contoso"
			env["DEFENDER_INCIDENTS_URL"] = ""
			for k, v := range tt.set {
				env[k] = v
			}
			if env["DEFENDER_INCIDENTS_URL"] == "" && env["DEFENDER_FEED"] != "" {
				env["DEFENDER_INCIDENTS_URL"] = "https://xdr.example.com"
			}
			setEnv(t, env)
			c, err := FromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := c.ForFeed("incidents")
			if f.Input != "contoso.incidents" || f.HEC.Sourcetype != tt.sourcetype || f.NestedSourcetype != "ms365:defender:incident:alerts" ||
				f.Defender.APIURL != "https://xdr.example.com" || f.Defender.Region != tt.region || f.Defender.Feed != "incidents" {
				t.Errorf("input %q sourcetype %q nested %q api %q region %q", f.Input, f.HEC.Sourcetype, f.NestedSourcetype, f.Defender.APIURL, f.Defender.Region)
			}
			if e := c.ForFeed("endpoint-alerts"); e.NestedSourcetype != "" || e.Defender.Region != tt.set["DEFENDER_REGION"] {
				t.Errorf("the endpoint feed: nested %q region %q", e.NestedSourcetype, e.Defender.Region)
			}
		})
	}
}

// shape = detection: the endpoint feed's events as the old SIEM API's detections, under their
// own sourcetype unless one is set; refused where it cannot apply.
func TestShapeDetection(t *testing.T) {
	for _, tt := range []struct {
		name       string
		set        map[string]string
		wantErr    string
		sourcetype string
	}{
		{name: "default shape", set: map[string]string{}, sourcetype: "ms:defender:atp:alerts"},
		{name: "detection", set: map[string]string{"DEFENDER_SHAPE": "Detection"}, sourcetype: "ms:defender:atp:detections"},
		{name: "detection, sourcetype set", set: map[string]string{"DEFENDER_SHAPE": "detection", "DEFENDER_HEC_SOURCETYPE": "old:detections"}, sourcetype: "old:detections"},
		{name: "detection under the alerts' sourcetype", set: map[string]string{"DEFENDER_SHAPE": "detection", "DEFENDER_HEC_SOURCETYPE": "ms:defender:atp:alerts"}, wantErr: "DEFENDER_HEC_SOURCETYPE"},
		{name: "not a shape", set: map[string]string{"DEFENDER_SHAPE": "detections"}, wantErr: "DEFENDER_SHAPE"},
		{name: "graph feed", set: map[string]string{"DEFENDER_SHAPE": "detection", "DEFENDER_FEED": "graph-alerts"}, wantErr: "DEFENDER_SHAPE"},
		{name: "syslog output", set: map[string]string{"DEFENDER_SHAPE": "detection", "DEFENDER_OUTPUT": "syslog", "DEFENDER_SYSLOG_URL": "tcp://127.0.0.1:6514"}, wantErr: "DEFENDER_SYSLOG_FORMAT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := good()
			for k, v := range tt.set {
				env[k] = v
			}
			setEnv(t, env)
			c, err := FromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HEC.Sourcetype != tt.sourcetype || c.Detections != (tt.sourcetype != "ms:defender:atp:alerts") {
				t.Errorf("sourcetype %q detections %v", c.HEC.Sourcetype, c.Detections)
			}
		})
	}
}

// HECWindow is the configured window only where the output is HEC.
func TestHECWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		output string
		give   int
		want   int
	}{
		{name: "hec", output: "hec", give: 256, want: 256},
		{name: "hec default", output: "hec", give: 64, want: 64},
		{name: "syslog", output: "syslog", give: 256, want: 0},
		{name: "stdout", output: "stdout", give: 256, want: 0},
	} {
		c := &Config{Output: tc.output}
		c.HEC.MaxInFlight = tc.give
		if got := c.HECWindow(); got != tc.want {
			t.Errorf("%s: HECWindow() = %d, want %d", tc.name, got, tc.want)
		}
	}
}
