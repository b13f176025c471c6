package config

import (
	"fmt"
	"slices"
	"strings"

	"ta-defender-alerts/app/defender"
)

// A feed is one API the collector reads: its own checkpoint, limiter, failure domain and
// default sourcetype. The standalone collector reads every feed DEFENDER_FEED lists, each in
// a pump of its own; a modular input stanza reads one.
type feed struct {
	name       string
	title      string // the API, for people
	sourcetype string // the events' sourcetype unless one is set
	urlField   string // the raw field that overrides its API's base URL
	nested     string // the sourcetype of the items nested in its own (incidents' alerts), if any
}

// DefaultFeed is the feed of an input that names none: the Alert API, as before feeds existed.
const DefaultFeed = "endpoint-alerts"

// DetectionSourcetype is the sourcetype of the endpoint feed's events with shape detection.
const DetectionSourcetype = "ms:defender:atp:detections"

var feeds = []feed{
	{name: DefaultFeed, title: "Defender Alert API", sourcetype: "ms:defender:atp:alerts", urlField: "APIURL"},
	{name: "graph-alerts", title: "Microsoft Graph security alerts API", sourcetype: "ms:defender:graph:alerts", urlField: "GraphURL"},
	{name: "incidents", title: "Defender XDR incidents API", sourcetype: "ms365:defender:incident", urlField: "IncidentsURL", nested: "ms365:defender:incident:alerts"},
}

// FeedNames are the feeds the collector can read, the default first.
func FeedNames() []string {
	var n []string
	for _, f := range feeds {
		n = append(n, f.name)
	}
	return n
}

func feedNamed(name string) *feed {
	for i := range feeds {
		if feeds[i].name == name {
			return &feeds[i]
		}
	}
	return nil
}

// FeedTitle names a feed's API for people.
func FeedTitle(name string) string {
	if f := feedNamed(name); f != nil {
		return f.title
	}
	return name
}

// FeedSourcetype is the sourcetype of a feed's events unless one is set.
func FeedSourcetype(name string) string {
	if f := feedNamed(name); f != nil {
		return f.sourcetype
	}
	return ""
}

// FeedNestedSourcetype is the sourcetype of the events of items nested in a feed's own (the
// incidents feed's alerts), "" for a feed without.
func FeedNestedSourcetype(name string) string {
	if f := feedNamed(name); f != nil {
		return f.nested
	}
	return ""
}

// perFeed is what ForFeed starts from: the settings as given, before a feed fills in its own
// defaults.
type perFeed struct {
	input        string // the input's name: the endpoint feed's checkpoint
	sourcetype   string // set explicitly, or ""
	apiURL       string
	graphURL     string
	incidentsURL string
	detections   bool // shape detection
	pageSize     int  // set explicitly, or 0: the feed's largest
	exclude      []string
	region       string
}

// InputName is the input's name (DEFENDER_INPUT, else the tenant id; a stanza's name),
// whatever the feed.
func (c *Config) InputName() string { return c.base.input }

// HECWindow is the most HEC batches the input may hold in flight: 0 when it does not deliver to
// HEC (syslog, or splunkd's stdout), whatever HEC settings it carries.
func (c *Config) HECWindow() int {
	if c.Output != "hec" {
		return 0
	}
	return c.HEC.MaxInFlight
}

// ForFeed is the configuration of one of the input's feeds: its checkpoint (the input's name
// for endpoint-alerts, so an upgrade resumes where it was; <input>.<feed> for the others), its
// API's base URL override, its sourcetype unless one was set, its page size unless one was
// set. The events' source stays the input's.
func (c *Config) ForFeed(name string) *Config {
	fc := *c
	f := feedNamed(name)
	fc.Feed, fc.Feeds = name, []string{name}
	fc.Input = c.base.input
	if name != DefaultFeed {
		fc.Input += "." + name
	}
	fc.HEC.Sourcetype = c.base.sourcetype
	if fc.HEC.Sourcetype == "" && f != nil {
		fc.HEC.Sourcetype = f.sourcetype
		if c.base.detections {
			fc.HEC.Sourcetype = DetectionSourcetype
		}
	}
	fc.Defender.APIURL = c.base.apiURL
	if f != nil && f.urlField == "GraphURL" {
		fc.Defender.APIURL = c.base.graphURL
	}
	if f != nil && f.urlField == "IncidentsURL" {
		fc.Defender.APIURL = c.base.incidentsURL
	}
	fc.NestedSourcetype = ""
	if f != nil {
		fc.NestedSourcetype = f.nested
	}
	fc.Defender.PageSize = c.base.pageSize
	fc.Defender.Feed = name
	fc.ExcludeSources = nil
	fc.Defender.Region = c.base.region
	if name == "graph-alerts" {
		fc.ExcludeSources = c.base.exclude
	}
	if r := fc.Defender.Region; slices.Contains(defender.FeedRegions(DefaultFeed), r) && !slices.Contains(defender.FeedRegions(name), r) {
		// The region names the Alert API's host. Graph has none; the XDR API has us, eu and
		// uk: any other region reads its global host, which serves every tenant.
		fc.Defender.Region = ""
	}
	return &fc
}

// parseFeeds reads DEFENDER_FEED (a list) or a stanza's feed (one).
func (r *raw) parseFeeds() ([]string, error) {
	var out []string
	for _, v := range strings.Split(r.Feed, ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" {
			continue
		}
		if feedNamed(v) == nil {
			return nil, r.errorf("Feed", v, "is not a feed; the feeds are "+strings.Join(FeedNames(), ", "))
		}
		if slices.Contains(out, v) {
			return nil, r.errorf("Feed", r.Feed, "names "+v+" twice")
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		out = []string{DefaultFeed}
	}
	if !slices.Contains(out, "graph-alerts") {
		for _, field := range []string{"GraphURL", "GraphExcludeSources"} {
			if v := reflectString(r, field); v != "" {
				return nil, r.errorf(field, v, "applies to the graph-alerts feed, which "+r.names.name("Feed")+" does not name")
			}
		}
	}
	if !slices.Contains(out, "incidents") {
		if v := reflectString(r, "IncidentsURL"); v != "" {
			return nil, r.errorf("IncidentsURL", v, "applies to the incidents feed, which "+r.names.name("Feed")+" does not name")
		}
	}
	for _, f := range feeds[1:] {
		if input := r.inputName(); strings.HasSuffix(strings.ToLower(input), "."+f.name) {
			// Its endpoint checkpoint would be another input's checkpoint of that feed.
			return nil, &Error{Var: r.inputVar(), Value: input, Msg: "ends in ." + f.name + ", the name another input's " + f.name + " feed keeps its checkpoint under; choose another name"}
		}
	}
	switch {
	case len(out) == 0:
		out = []string{DefaultFeed}
	case len(out) > 1 && r.names == paramNames:
		return nil, r.errorf("Feed", r.Feed, "names more than one feed; an input reads one (add an input for each feed)")
	case len(out) > 1 && r.HECSourcetype != "":
		return nil, r.errorf("HECSourcetype", r.HECSourcetype, "applies to an input with one feed; with several in "+r.names.name("Feed")+", leave it unset so that each feed's events get their own ("+feedSourcetypes()+")")
	}
	return out, nil
}

func feedSourcetypes() string {
	var s []string
	for _, f := range feeds {
		s = append(s, f.name+": "+f.sourcetype)
	}
	return strings.Join(s, ", ")
}

// knownServiceSources are the serviceSource values Graph documents (docs/graph-and-incidents-api.md).
var knownServiceSources = []string{
	"unknown", "microsoftDefenderForEndpoint", "microsoftDefenderForIdentity", "microsoftDefenderForCloudApps",
	"microsoftDefenderForOffice365", "microsoft365Defender", "azureAdIdentityProtection", "microsoftAppGovernance",
	"dataLossPrevention", "microsoftDefenderForCloud",
}

// parseExcludeSources reads the graph-alerts feed's list of service sources left out. A value
// Graph does not document is refused: a misspelt name would leave that source in, and its
// alerts indexed twice by a site that also reads them from the Alert API.
func (r *raw) parseExcludeSources() ([]string, error) {
	var out []string
	for _, v := range strings.Split(r.GraphExcludeSources, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		i := slices.IndexFunc(knownServiceSources, func(k string) bool { return strings.EqualFold(k, v) })
		if i < 0 {
			return nil, r.errorf("GraphExcludeSources", v, fmt.Sprintf("is not one of Graph's service sources (%s)", strings.Join(knownServiceSources, ", ")))
		}
		if v = knownServiceSources[i]; !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func reflectString(r *raw, field string) string {
	switch field {
	case "GraphURL":
		return strings.TrimSpace(r.GraphURL)
	case "GraphExcludeSources":
		return strings.TrimSpace(r.GraphExcludeSources)
	case "IncidentsURL":
		return strings.TrimSpace(r.IncidentsURL)
	}
	return ""
}

// inputName is the input's name as build will take it: DEFENDER_INPUT or the stanza's name,
// else the tenant id.
func (r *raw) inputName() string {
	if r.Input != "" {
		return r.Input
	}
	return r.TenantID
}

// inputVar names where the input's name comes from.
func (r *raw) inputVar() string {
	if r.names == paramNames {
		return "the input's name"
	}
	return "DEFENDER_INPUT"
}
