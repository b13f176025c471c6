package defender

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A dialect is the vocabulary of one alert API: its path, field names, limits, headers and
// error shape. The drain (window.go and the files it calls) reads every API the same way, with
// only $filter (ge/lt on the update and creation times), $top and $skip; what differs between
// APIs is data, here.

// Feed names, for Config.Feed.
const (
	FeedEndpointAlerts = "endpoint-alerts" // Defender for Endpoint's Alert API, GET /api/alerts (the default)
	FeedGraphAlerts    = "graph-alerts"    // Microsoft Graph security alerts_v2
	FeedIncidents      = "incidents"       // Defender XDR incidents, GET /api/incidents (with their alerts)
)

type dialect struct {
	name    string
	label   string // the API's name in error messages
	noun    string // what a record is called in messages ("" is "alert")
	path    string // the list path, below the API base
	updated string // the update time: the window's key and half of the dedupe key
	created string // the creation time, which splits a tie group
	id      string // the record's id (a string, or a number: idNumber)
	// idNumber: the id is a JSON integer (the XDR incidentId), not a string; the record's key
	// is its decimal digits as sent.
	idNumber bool
	idKey    bool   // $filter takes the id (gt/lt), so a window may be paged along it
	expand   string // $expand on page queries; "" for none
	maxTop   int    // the largest $top the client asks for
	maxSkip  int    // the largest $skip the client relies on (0: no limit)
	follow   bool   // @odata.nextLink is followed within a window (links.go)
	headers  [][2]string
	limits   Limits // the client-side quota by default
	clouds   map[Cloud]cloudHosts
	// regions are the commercial cloud's regional hosts (Config.Region), none if empty;
	// regionHost makes a region's API base.
	regions    []string
	regionHost func(region string) string

	// timeLit writes a time as $filter wants it (unquoted ISO-8601 UTC).
	timeLit func(time.Time) string
	// errorBody reads an error reply's body (and headers) for the admin.
	errorBody func(h http.Header, body []byte) errorBody
	// hints for the replies a person must act on.
	hintThrottled, hintForbidden string
}

// errorBody is what an error reply says, cleaned for a log line.
type errorBody struct {
	code, message string
	requestID     string // Graph: what Microsoft support asks for
	date          string
	target        string // Defender XDR: the request's tracking id
}

var endpointAlerts = &dialect{
	name:    FeedEndpointAlerts,
	label:   "Defender API",
	path:    "/api/alerts",
	updated: "lastUpdateTime",
	created: "alertCreationTime",
	id:      "id",
	idKey:   true,
	expand:  "evidence",
	maxTop:  MaxPageSize,
	limits:  defaultLimits,
	clouds:  clouds,
	regions: regions,
	regionHost: func(r string) string {
		return "https://" + r + ".api.security.microsoft.com"
	},

	timeLit:       FilterTime,
	errorBody:     alertAPIErrorBody,
	hintThrottled: "Microsoft's rate limit: 100 calls per minute and 1,500 per hour per application",
	hintForbidden: hintForbidden,
}

// graphAlerts is GET /v1.0/security/alerts_v2 (docs/graph-and-incidents-api.md, section 1).
var graphAlerts = &dialect{
	name:    FeedGraphAlerts,
	label:   "Microsoft Graph",
	path:    "/v1.0/security/alerts_v2",
	updated: "lastUpdateDateTime",
	created: "createdDateTime",
	id:      "id", // not among alerts_v2's $filter properties: never a key
	// Graph documents no $top limit for alerts_v2 and is observed to cut a larger $top down to
	// 1,000 without a word: a page cut short that way would pass for a complete snapshot, so
	// the client never asks for more.
	// Nor does it document a $skip limit; the legacy security alerts API allowed $skip up to
	// 500, and others saw $skip paging stall on alerts_v2. An empty answer past such a limit
	// would pass a count probe, so the client keeps within 500: pages of 500 (each page's
	// probe skips at most that), and a probe that would skip further proves nothing.
	maxTop:  500,
	maxSkip: 500,
	follow:  true,
	// Enum members added after unknownFutureValue come back only when asked for.
	headers: [][2]string{{"Prefer", "include-unknown-enum-members"}},
	// 150 calls a minute per app and tenant for the security alert entity; no hourly quota.
	limits:  Limits{PerMinute: 150, Minute: time.Minute},
	clouds:  graphClouds,
	timeLit: graphTime,

	errorBody:     graphErrorBody,
	hintThrottled: "Microsoft Graph's rate limit for security alerts: 150 calls per minute per application and tenant",
	hintForbidden: "the app lacks the SecurityAlert.Read.All application permission or admin consent: " +
		"in Entra ID → App registrations → your app → API permissions, add Microsoft Graph → " +
		"Application permissions → SecurityAlert.Read.All, then Grant admin consent",
}

// graphClouds: GCC keeps the worldwide Graph host; the token scope is the Graph host's.
var graphClouds = map[Cloud]cloudHosts{
	Commercial: {api: "https://graph.microsoft.com", resource: "https://graph.microsoft.com", login: "https://login.microsoftonline.com"},
	GCC:        {api: "https://graph.microsoft.com", resource: "https://graph.microsoft.com", login: "https://login.microsoftonline.com"},
	GCCHigh:    {api: "https://graph.microsoft.us", resource: "https://graph.microsoft.us", login: "https://login.microsoftonline.us"},
	DoD:        {api: "https://dod-graph.microsoft.us", resource: "https://dod-graph.microsoft.us", login: "https://login.microsoftonline.us"},
}

var dialects = map[string]*dialect{FeedEndpointAlerts: endpointAlerts, FeedGraphAlerts: graphAlerts, FeedIncidents: incidents}

// Feeds lists the feed names Config.Feed accepts.
func Feeds() []string {
	names := make([]string, 0, len(dialects))
	for n := range dialects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dialectOf returns the dialect of a feed name ("" is the endpoint feed).
func dialectOf(feed string) (*dialect, error) {
	if feed == "" {
		return endpointAlerts, nil
	}
	if dl, ok := dialects[strings.ToLower(feed)]; ok {
		return dl, nil
	}
	return nil, &FieldError{Field: "Feed", Value: feed, Msg: "is not a feed; use one of " + strings.Join(Feeds(), ", ")}
}

func (dl *dialect) recordNoun() string {
	if dl.noun == "" {
		return "alert"
	}
	return dl.noun
}

// graphTime writes Graph's form: unquoted ISO-8601 UTC, trailing zeros of the fraction dropped
// (2026-12-01T00:00:00Z), the full 100 ns precision kept otherwise.
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999Z") }

// query encodes a list query: $filter, $top, $skip when not 0, and the dialect's $expand when
// expand is set (pages; count probes leave it out).
func (dl *dialect) query(filter string, top, skip int, expand bool) string {
	var b strings.Builder
	b.WriteString("$filter=")
	b.WriteString(escape(filter))
	b.WriteString("&$top=")
	b.WriteString(strconv.Itoa(top))
	if skip > 0 {
		b.WriteString("&$skip=")
		b.WriteString(strconv.Itoa(skip))
	}
	if expand && dl.expand != "" {
		b.WriteString("&$expand=")
		b.WriteString(dl.expand)
	}
	return b.String()
}

// rangeFilter is "field ge lo and field lt hi".
func (dl *dialect) rangeFilter(field string, lo, hi time.Time) string {
	return field + " ge " + dl.timeLit(lo) + " and " + field + " lt " + dl.timeLit(hi)
}
