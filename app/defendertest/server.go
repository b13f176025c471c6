// Package defendertest is a stand-in for the Defender for Endpoint Alert API and its Entra ID
// token endpoints, for tests and the demo. It is faithful to shared/docs/defender-api.md,
// including what the real service rejects and how it fails: token expiry, 100/minute and
// 1,500/hour quotas with 429 + Retry-After, pages in one of several orders (newest
// lastUpdateTime first by default; the real API documents none), alerts that change while a
// client pages and versions that become visible late, 500s and cut-off bodies.
//
// In IncidentsMode it serves the Defender XDR API's GET /api/incidents (incidents.go): the
// XDR audience and Incident.Read.All, incidents grouping 1 to 50 alerts, its $filter grammar,
// $top at most 100, 50 calls a minute and 1,500 an hour.
//
// In GraphMode the same server and the same alerts serve Microsoft Graph's
// GET /v1.0/security/alerts_v2 instead, as docs/graph-and-incidents-api.md (section 1)
// describes it: a Graph audience and SecurityAlert.Read.All, Graph's field names, evidence
// of many @odata.type kinds, Prefer: include-unknown-enum-members, its $filter grammar,
// $top cut to 1000 without a word, @odata.nextLink with an expiring $skiptoken, 150 calls a
// minute, and Graph's error shape.
package defendertest

import (
	"crypto/x509"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"ta-defender-alerts/app/loopback"
)

// Graph hosts per cloud: a Graph token's audience, and its scope with "/.default".
const (
	GraphGlobal  = "https://graph.microsoft.com" // commercial and GCC
	GraphGCCHigh = "https://graph.microsoft.us"
	GraphDoD     = "https://dod-graph.microsoft.us"
)

// Options configure a stand-in. Zero values take the real service's behaviour.
type Options struct {
	// Mode is the API served (AlertAPIMode by default).
	Mode Mode
	// GraphHost is the audience a token must have in GraphMode: the configured cloud's Graph
	// host (default GraphGlobal). The token endpoint issues tokens for it and for Resource.
	GraphHost string
	// GraphPageSize is GraphMode's page when a call sends no $top (default 1000; Microsoft
	// documents none). $top above GraphMaxTop is cut to it silently, as Graph does.
	GraphPageSize int
	// GraphShortPage, when set, ends every GraphMode page after that many alerts, short of
	// $top, naming the rest with a nextLink: Graph documents that a page may hold fewer than
	// $top with more to come, so a short page is not the end of a query there.
	GraphShortPage int
	// GraphMaxSkip, when set, answers a GraphMode $skip above it with an empty page, as an API
	// with an undocumented $skip limit might (the legacy security alerts API allowed 500).
	GraphMaxSkip int
	// GraphRefuseOr answers a GraphMode $filter that joins comparisons with "or" with a 400,
	// as an API whose filter support is narrower than OData's might (Graph's "support varies
	// by resource").
	GraphRefuseOr bool
	// SkipTokenLifetime is how long (on the Now clock) the $skiptoken of a GraphMode
	// @odata.nextLink is honoured (default 10m; Microsoft documents none); then it is a 400.
	SkipTokenLifetime time.Duration

	// XDRHost is the audience a token must have in IncidentsMode: the configured cloud's
	// Defender XDR API host (default XDRCommercial).
	XDRHost string

	// Login, when set, is the stand-in whose token endpoint issued the tokens this one takes
	// (one Entra ID for several APIs: a GraphMode stand-in issues tokens for both audiences);
	// its own token endpoint still works.
	Login *Server

	TenantID     string // GUID; a domain name is accepted as an alias when TenantDomain is set
	TenantDomain string
	ClientID     string
	ClientSecret string
	// Certificate, when set, is registered with the app for client assertions.
	Certificate *x509.Certificate

	SecretExpired bool          // the secret is right but expired (AADSTS7000222)
	NoPermission  bool          // tokens are issued but lack Alert.Read.All (SecurityAlert.Read.All in GraphMode, Incident.Read.All in IncidentsMode): 403
	TokenLifetime time.Duration // default 1h

	PerMinute int           // default 100 (GraphMode: 150, IncidentsMode: 50)
	Minute    time.Duration // default 1m; tests shrink it
	PerHour   int           // default 1500 (GraphMode: none)
	Hour      time.Duration // default 1h

	// Now is the service's clock (lastUpdateTime, visibility, the Date header, assertion
	// times, Retry-After dates); default time.Now. A clock apart from the host's simulates a
	// host whose clock is off.
	Now func() time.Time
	// RetryAfterDates sends Retry-After as an HTTP date instead of seconds.
	RetryAfterDates bool
	Seed            uint64
}

// Server is the stand-in. Its exported methods change its state or adversity at any time.
type Server struct {
	*loopback.Server
	opt Options

	mu     sync.Mutex
	rng    *mrand.Rand
	alerts []*alert
	byID   map[string]*alert
	nextN  int
	// nextAlert numbers the alerts nested in incidents (IncidentsMode).
	nextAlert int
	tokens    map[string]grant // access token → what it grants
	skips     map[string]skipToken
	nSkips    int
	jtis      map[string]bool
	quota     []time.Time // times of calls that counted against the quota (real time)
	calls     []time.Time // times of every API call (real time)
	blocked   time.Time   // a 429 told the client to wait until then

	order          Order
	ignoreSkip     bool
	linksRestart   bool
	onLink         []lateAlerts // shown just before the next $skiptoken is answered
	pretty         bool
	fail500        float64
	cutRate        float64
	stallRate      float64
	stallFor       time.Duration
	storm          int
	stormAfter     time.Duration
	down           int
	downAfter      time.Duration
	updatesPerCall int
	refuseTokens   bool
	failEvery      int
	admitted       int
	delay          func(r *mrand.Rand) time.Duration

	stats Stats

	// sorted caches the visible versions, newest first, while nothing changes (NewestFirst).
	sorted    []item
	sortedAt  int // s.changes when sorted was built
	changes   int
	anyDelays bool
}

// Stats are what the stand-in saw.
type Stats struct {
	TokensIssued   int
	TokenRejected  int
	APICalls       int
	ByStatus       map[int]int
	Violations     int // calls that came before a Retry-After had passed
	Updates        int
	CutOff         int
	AlertsReturned int
	BytesOut       int64 // alert page bytes sent
	// GraphMode: calls that followed a nextLink's $skiptoken, and those refused as expired.
	Links, LinksExpired int
}

// New starts a stand-in on a loopback port.
func New(opt Options) *Server {
	if opt.TokenLifetime == 0 {
		opt.TokenLifetime = time.Hour
	}
	graph := opt.Mode == GraphMode
	if opt.PerMinute == 0 {
		opt.PerMinute = 100
		if graph {
			opt.PerMinute = GraphPerMinute
		}
		if opt.Mode == IncidentsMode {
			opt.PerMinute = IncidentsPerMinute
		}
	}
	if opt.Minute == 0 {
		opt.Minute = time.Minute
	}
	if opt.PerHour == 0 {
		opt.PerHour = 1500
		if graph {
			opt.PerHour = math.MaxInt
		}
	}
	if opt.XDRHost == "" {
		opt.XDRHost = XDRCommercial
	}
	if opt.GraphHost == "" {
		opt.GraphHost = GraphGlobal
	}
	if opt.GraphPageSize == 0 {
		opt.GraphPageSize = GraphMaxTop
	}
	if opt.SkipTokenLifetime == 0 {
		opt.SkipTokenLifetime = 10 * time.Minute
	}
	if opt.Hour == 0 {
		opt.Hour = time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{
		opt:    opt,
		rng:    mrand.New(mrand.NewPCG(opt.Seed, 7)),
		byID:   map[string]*alert{},
		tokens: map[string]grant{},
		skips:  map[string]skipToken{},
		jtis:   map[string]bool{},
		stats:  Stats{ByStatus: map[int]int{}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("POST /{tenant}/oauth2/token", s.token)
	switch opt.Mode {
	case GraphMode:
		mux.HandleFunc("GET /v1.0/security/alerts_v2", s.list)
		mux.HandleFunc("/", s.graphNotFound)
	case IncidentsMode:
		mux.HandleFunc("GET "+incidentsPath, s.list)
		mux.HandleFunc("/", s.incidentsNotFound)
	default:
		mux.HandleFunc("GET /api/alerts", s.list)
		mux.HandleFunc("GET /api/v1.0/alerts", s.list)
	}
	s.Server = loopback.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every reply says the service's time, from its own clock (net/http would use the
		// host's), so a client can follow Microsoft's clock rather than its own.
		w.Header().Set("Date", s.opt.Now().UTC().Format(http.TimeFormat))
		mux.ServeHTTP(w, r)
	}))
	return s
}

// --- adversity ---

// SetOrder sets the order the pages are cut from (NewestFirst by default; the real API
// documents none).
func (s *Server) SetOrder(o Order) { s.mu.Lock(); s.order = o; s.mu.Unlock() }

// IgnoreSkip makes the API answer every query as if $skip were 0 (a broken server: no client
// can prove a group larger than a page complete through it, and must say so).
func (s *Server) IgnoreSkip(on bool) { s.mu.Lock(); s.ignoreSkip = on; s.mu.Unlock() }

type lateAlerts struct {
	n  int
	at func(i int) time.Time
}

// ShowOnNextLink makes n more alerts (lastUpdateTime from at(i)) visible just before the next
// GraphMode $skiptoken is answered: after the page that named the link and any calls between,
// as versions that show up late do.
func (s *Server) ShowOnNextLink(n int, at func(i int) time.Time) {
	s.mu.Lock()
	s.onLink = append(s.onLink, lateAlerts{n, at})
	s.mu.Unlock()
}

// LinksRestart makes every GraphMode $skiptoken answer its query's first page again, as a
// broken link would, each time with a new token (so a client sees no link twice).
func (s *Server) LinksRestart(on bool) { s.mu.Lock(); s.linksRestart = on; s.mu.Unlock() }

// Pretty makes the API send its pages pretty-printed (indented, a newline between tokens),
// as JSON may arrive through a tool or proxy that reformats it: the same values, other bytes.
func (s *Server) Pretty(on bool) { s.mu.Lock(); s.pretty = on; s.mu.Unlock() }

// SetFailures makes this share of API calls fail with 500, and this share cut their body off.
func (s *Server) SetFailures(rate500, rateCut float64) {
	s.mu.Lock()
	s.fail500, s.cutRate = rate500, rateCut
	s.mu.Unlock()
}

// SetStalls makes this share of API calls wait d before answering (a client times out).
func (s *Server) SetStalls(rate float64, d time.Duration) {
	s.mu.Lock()
	s.stallRate, s.stallFor = rate, d
	s.mu.Unlock()
}

// Throttle answers the next n API calls with 429 and Retry-After: after.
func (s *Server) Throttle(n int, after time.Duration) {
	s.mu.Lock()
	s.storm, s.stormAfter = n, after
	s.mu.Unlock()
}

// Unavailable answers the next n API calls that pass the token check with 503 and
// Retry-After: after (Graph documents 503s that carry it).
func (s *Server) Unavailable(n int, after time.Duration) {
	s.mu.Lock()
	s.down, s.downAfter = n, after
	s.mu.Unlock()
}

// UpdatesPerCall updates n random alerts right after each page's selection, so that every
// page of a drain sees the window shift.
func (s *Server) UpdatesPerCall(n int) { s.mu.Lock(); s.updatesPerCall = n; s.mu.Unlock() }

// SetVisibilityDelay makes each new version visible a random time after its lastUpdateTime.
func (s *Server) SetVisibilityDelay(f func(r *mrand.Rand) time.Duration) {
	s.mu.Lock()
	s.anyDelays = s.anyDelays || f != nil
	s.delay = f
	s.mu.Unlock()
}

// FailEvery answers every nth call that passes the token and quota checks with 500 (0: off).
func (s *Server) FailEvery(n int) { s.mu.Lock(); s.failEvery, s.admitted = n, 0; s.mu.Unlock() }

// RefuseTokens makes the API refuse every token with 401, as when the app registration
// belongs to another tenant or the token's audience is wrong.
func (s *Server) RefuseTokens(on bool) { s.mu.Lock(); s.refuseTokens = on; s.mu.Unlock() }

// ExpireTokens makes every issued token expire now, as if its lifetime had run out.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	for k, g := range s.tokens {
		g.exp = time.Time{}
		s.tokens[k] = g
	}
	s.mu.Unlock()
}

// ExpireSkipTokens makes every $skiptoken handed out so far expire now (GraphMode).
func (s *Server) ExpireSkipTokens() {
	s.mu.Lock()
	for k, st := range s.skips {
		st.expires = time.Time{}
		s.skips[k] = st
	}
	s.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByStatus = map[int]int{}
	for k, v := range s.stats.ByStatus {
		st.ByStatus[k] = v
	}
	return st
}

// QuotaPeaks returns the most API calls seen in any span of the quota's short and long
// windows, to compare with the quotas (PerMinute, PerHour).
func (s *Server) QuotaPeaks() (perMinute, perHour int) {
	return s.MaxCalls(s.opt.Minute), s.MaxCalls(s.opt.Hour)
}

// Quotas returns the quotas in force.
func (s *Server) Quotas() (perMinute, perHour int) { return s.opt.PerMinute, s.opt.PerHour }

// MaxCalls returns the largest number of API calls seen in any span of d.
func (s *Server) MaxCalls(d time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	best, j := 0, 0
	for i := range s.calls {
		for s.calls[i].Sub(s.calls[j]) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
