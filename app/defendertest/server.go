// Package defendertest is a stand-in for the Defender for Endpoint Alert API and its Entra ID
// token endpoints, for tests and the demo. It is faithful to shared/docs/defender-api.md,
// including what the real service rejects and how it fails: token expiry, 100/minute and
// 1,500/hour quotas with 429 + Retry-After, pages in one of several orders (newest
// lastUpdateTime first by default; the real API documents none), alerts that change while a
// client pages and versions that become visible late, 500s and cut-off bodies.
package defendertest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Order is how the stand-in orders the versions a query selects, before $skip and $top cut
// the page out of them. The real API documents no order, so a client must be complete under
// every one of these.
type Order int

const (
	NewestFirst        Order = iota // newest lastUpdateTime first, ties in a stable order (the default)
	NewestFirstTies                 // newest lastUpdateTime first, ties in a new random order on every call
	OldestFirst                     // oldest lastUpdateTime first
	Shuffled                        // no stable order: a new random order on every call
	NewestCreatedFirst              // newest alertCreationTime first, ties in a stable order
	IDOrder                         // by id, ascending (alert ids begin with their creation ticks)
)

var orderNames = []string{"lastupdate", "lastupdate-ties", "oldest", "shuffled", "created", "id"}

func (o Order) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// ParseOrder reads an order by its String name (for flags).
func ParseOrder(s string) (Order, error) {
	for i, n := range orderNames {
		if n == s {
			return Order(i), nil
		}
	}
	return 0, fmt.Errorf("unknown order %q (want one of %s)", s, strings.Join(orderNames, ", "))
}

// Options configure a stand-in. Zero values take the real service's behaviour.
type Options struct {
	TenantID     string // GUID; a domain name is accepted as an alias when TenantDomain is set
	TenantDomain string
	ClientID     string
	ClientSecret string
	// Certificate, when set, is registered with the app for client assertions.
	Certificate *x509.Certificate

	SecretExpired bool          // the secret is right but expired (AADSTS7000222)
	NoPermission  bool          // tokens are issued but the app lacks Alert.Read.All (403)
	TokenLifetime time.Duration // default 1h

	PerMinute int           // default 100
	Minute    time.Duration // default 1m; tests shrink it
	PerHour   int           // default 1500
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
	*httptest.Server
	opt Options

	mu      sync.Mutex
	rng     *mrand.Rand
	alerts  []*alert
	byID    map[string]*alert
	nextN   int
	tokens  map[string]time.Time // access token → expiry (real time)
	jtis    map[string]bool
	quota   []time.Time // times of calls that counted against the quota (real time)
	calls   []time.Time // times of every API call (real time)
	blocked time.Time   // a 429 told the client to wait until then

	order          Order
	ignoreSkip     bool
	fail500        float64
	cutRate        float64
	stallRate      float64
	stallFor       time.Duration
	storm          int
	stormAfter     time.Duration
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
}

// New starts a stand-in on a loopback port.
func New(opt Options) *Server {
	if opt.TokenLifetime == 0 {
		opt.TokenLifetime = time.Hour
	}
	if opt.PerMinute == 0 {
		opt.PerMinute = 100
	}
	if opt.Minute == 0 {
		opt.Minute = time.Minute
	}
	if opt.PerHour == 0 {
		opt.PerHour = 1500
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
		tokens: map[string]time.Time{},
		jtis:   map[string]bool{},
		stats:  Stats{ByStatus: map[int]int{}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("POST /{tenant}/oauth2/token", s.token)
	mux.HandleFunc("GET /api/alerts", s.list)
	mux.HandleFunc("GET /api/v1.0/alerts", s.list)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every reply says the service's time, from its own clock (net/http would use the
		// host's), so a client can follow Microsoft's clock rather than its own.
		w.Header().Set("Date", s.opt.Now().UTC().Format(http.TimeFormat))
		mux.ServeHTTP(w, r)
	}))
	return s
}

// --- the tenant's data ---

// AddAlerts creates n alerts whose first version has a lastUpdateTime from at(i).
func (s *Server) AddAlerts(n int, at func(i int) time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		s.nextN++
		t := at(i).UTC().Truncate(100 * time.Nanosecond)
		a := &alert{id: AlertID(s.nextN), incident: 1000 + s.nextN, created: t, pad: s.rng.IntN(2000)}
		a.versions = []Version{{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: "New"}}
		s.alerts = append(s.alerts, a)
		s.byID[a.id] = a
		ids[i] = a.id
	}
	s.changes++
	return ids
}

var statuses = []string{"New", "InProgress", "Resolved"}

// Update gives n random alerts a new version stamped now.
func (s *Server) Update(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateLocked(n)
}

func (s *Server) updateLocked(n int) {
	if len(s.alerts) == 0 {
		return
	}
	now := s.opt.Now().UTC().Truncate(100 * time.Nanosecond)
	for i := 0; i < n; i++ {
		a := s.alerts[s.rng.IntN(len(s.alerts))]
		last := a.versions[len(a.versions)-1]
		t := now
		if !t.After(last.LastUpdate) {
			t = last.LastUpdate.Add(100 * time.Nanosecond)
		}
		a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: statuses[s.rng.IntN(len(statuses))]})
		s.stats.Updates++
	}
	s.changes++
}

// UpdateAt gives each of ids a new version stamped t (a bulk action: many alerts share t).
func (s *Server) UpdateAt(ids []string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t = t.UTC().Truncate(100 * time.Nanosecond)
	for _, id := range ids {
		if a := s.byID[id]; a != nil {
			a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: "Resolved"})
			s.stats.Updates++
		}
	}
	s.changes++
}

// Revisit gives every k-th alert (by age) a new version stamped at a time spread between its
// creation and until, as analysts' later updates do: creation order (and id order) then
// differ from lastUpdateTime order, as in a real tenant.
func (s *Server) Revisit(k int, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until = until.UTC().Truncate(100 * time.Nanosecond)
	for i := 0; i < len(s.alerts); i += k {
		a := s.alerts[i]
		last := a.versions[len(a.versions)-1].LastUpdate
		if !until.After(last) {
			continue
		}
		frac := float64((i*7919)%1000) / 1000
		t := last.Add(time.Duration(frac * float64(until.Sub(last)))).Truncate(100 * time.Nanosecond)
		if !t.After(last) {
			t = last.Add(100 * time.Nanosecond)
		}
		a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: "Resolved"})
		s.stats.Updates++
	}
	s.changes++
}

// StartUpdates updates perSecond random alerts a second (real time) until the returned stop.
func (s *Server) StartUpdates(perSecond int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second / time.Duration(perSecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.Update(1)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (s *Server) delayLocked() time.Duration {
	if s.delay == nil {
		return 0
	}
	return s.delay(s.rng)
}

// Versions returns an alert's versions, oldest first.
func (s *Server) Versions(id string) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byID[id]; a != nil {
		return append([]Version(nil), a.versions...)
	}
	return nil
}

// IDs returns every alert id.
func (s *Server) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.alerts))
	for i, a := range s.alerts {
		ids[i] = a.id
	}
	return ids
}

// Current returns each alert's newest version visible at t.
func (s *Server) Current(t time.Time) map[string]Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]Version, len(s.alerts))
	for _, a := range s.alerts {
		if v, ok := a.visible(t); ok {
			m[a.id] = v
		}
	}
	return m
}

// --- adversity ---

// SetOrder sets the order the pages are cut from (NewestFirst by default; the real API
// documents none).
func (s *Server) SetOrder(o Order) { s.mu.Lock(); s.order = o; s.mu.Unlock() }

// IgnoreSkip makes the API answer every query as if $skip were 0 (a broken server: no client
// can prove a group larger than a page complete through it, and must say so).
func (s *Server) IgnoreSkip(on bool) { s.mu.Lock(); s.ignoreSkip = on; s.mu.Unlock() }

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
	for k := range s.tokens {
		s.tokens[k] = time.Time{}
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

// --- the API ---

func apiError(w http.ResponseWriter, status int, code, msg string) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q,"target":%q}}`, code, msg, hex.EncodeToString(id[:]))
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	stall := s.stallRate > 0 && s.rng.Float64() < s.stallRate
	d := s.stallFor
	s.mu.Unlock()
	if stall {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(d):
		}
	}
	status, page, cut := s.admit(w, r, now)
	if status != 0 {
		return
	}
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, `{"@odata.context":"`...)
	buf = append(buf, s.URL...)
	buf = append(buf, `/api/$metadata#Alerts","value":[`...)
	for i, it := range page {
		if i > 0 {
			buf = append(buf, ',')
		}
		if cut == i {
			_, _ = w.Write(buf[:len(buf)/2+1])
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		before := len(buf)
		buf = render(buf, it.a, it.v)
		s.countBytes(len(buf) - before)
		if len(buf) >= 48<<10 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			buf = buf[:0]
		}
	}
	if cut >= 0 {
		_, _ = w.Write(buf)
		panic(http.ErrAbortHandler)
	}
	buf = append(buf, "]}"...)
	_, _ = w.Write(buf)
}

func (s *Server) countBytes(n int) {
	s.mu.Lock()
	s.stats.BytesOut += int64(n)
	s.mu.Unlock()
}

type item struct {
	a *alert
	v Version
}

// admit checks the call (token, quota, query, adversity) and selects the page. It writes the
// error reply itself and returns its status, or 0 with the page and where to cut it (-1: don't).
func (s *Server) admit(w http.ResponseWriter, r *http.Request, now time.Time) (int, []item, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.APICalls++
	s.calls = append(s.calls, now)
	reply := func(status int, code, msg string) (int, []item, int) {
		s.stats.ByStatus[status]++
		apiError(w, status, code, msg)
		return status, nil, -1
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return reply(401, "Unauthorized", "Authorization header is missing or not a Bearer token")
	}
	exp, known := s.tokens[tok]
	if !known || !now.Before(exp) || s.refuseTokens {
		return reply(401, "Unauthorized", "The access token is invalid or has expired")
	}
	if now.Before(s.blocked) {
		s.stats.Violations++
	}
	if s.storm > 0 {
		s.storm--
		return s.throttle(w, now, s.stormAfter)
	}
	// The quota: calls within the last Minute and Hour (429s do not count against it).
	for _, q := range []struct {
		n int
		d time.Duration
	}{{s.opt.PerMinute, s.opt.Minute}, {s.opt.PerHour, s.opt.Hour}} {
		in := 0
		var oldest time.Time
		for i := len(s.quota) - 1; i >= 0 && now.Sub(s.quota[i]) < q.d; i-- {
			in++
			oldest = s.quota[i]
		}
		if in >= q.n {
			return s.throttle(w, now, q.d-now.Sub(oldest))
		}
	}
	s.quota = append(s.quota, now)
	if s.opt.NoPermission {
		return reply(403, "Forbidden", "The application does not have any of the required application permissions (Alert.ReadWrite.All, Alert.Read.All) to access the resource.")
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return reply(400, "BadRequest", err.Error())
	}
	s.admitted++
	if s.failEvery > 0 && s.admitted%s.failEvery == 0 {
		return reply(500, "InternalServerError", "An unexpected error occurred")
	}
	if s.fail500 > 0 && s.rng.Float64() < s.fail500 {
		return reply(500, "InternalServerError", "An unexpected error occurred")
	}
	tnow := s.opt.Now()
	var page []item
	indexed := s.order == NewestFirst && !s.anyDelays && onlyLastUpdate(q)
	if indexed {
		// Large backlogs: answer from a sorted index instead of scanning and sorting.
		if s.sorted == nil || s.sortedAt != s.changes {
			s.sorted = s.sorted[:0]
			for _, a := range s.alerts {
				if v, ok := a.visible(tnow); ok {
					s.sorted = append(s.sorted, item{a, v})
				}
			}
			sort.SliceStable(s.sorted, func(i, j int) bool { return s.sorted[i].v.LastUpdate.After(s.sorted[j].v.LastUpdate) })
			s.sortedAt = s.changes
		}
		lo, hi := q.lutRange()
		start := sort.Search(len(s.sorted), func(i int) bool { return !hi(s.sorted[i].v.LastUpdate) })
		for i := start; i < len(s.sorted) && len(page) < q.skip+q.top && lo(s.sorted[i].v.LastUpdate); i++ {
			page = append(page, s.sorted[i])
		}
	} else {
		for _, a := range s.alerts {
			if v, ok := a.visible(tnow); ok && q.match(a, v) {
				page = append(page, item{a, v})
			}
		}
	}
	switch s.order {
	case NewestFirst:
		if !indexed { // the index is in this order already
			sort.SliceStable(page, func(i, j int) bool { return page[i].v.LastUpdate.After(page[j].v.LastUpdate) })
		}
	case NewestFirstTies:
		s.rng.Shuffle(len(page), func(i, j int) { page[i], page[j] = page[j], page[i] })
		sort.SliceStable(page, func(i, j int) bool { return page[i].v.LastUpdate.After(page[j].v.LastUpdate) })
	case OldestFirst:
		sort.SliceStable(page, func(i, j int) bool { return page[i].v.LastUpdate.Before(page[j].v.LastUpdate) })
	case Shuffled:
		s.rng.Shuffle(len(page), func(i, j int) { page[i], page[j] = page[j], page[i] })
	case NewestCreatedFirst:
		sort.SliceStable(page, func(i, j int) bool { return page[i].a.created.After(page[j].a.created) })
	case IDOrder:
		sort.SliceStable(page, func(i, j int) bool { return page[i].a.id < page[j].a.id })
	}
	if s.ignoreSkip {
		q.skip = 0
	}
	if q.skip >= len(page) {
		page = nil
	} else {
		page = page[q.skip:]
	}
	if len(page) > q.top {
		page = page[:q.top]
	}
	page = append([]item(nil), page...)
	cut := -1
	if s.cutRate > 0 && s.rng.Float64() < s.cutRate {
		cut = s.rng.IntN(len(page) + 1)
		s.stats.CutOff++
	}
	s.updateLocked(s.updatesPerCall)
	s.stats.ByStatus[200]++
	s.stats.AlertsReturned += len(page)
	return 0, page, cut
}

func (s *Server) throttle(w http.ResponseWriter, now time.Time, after time.Duration) (int, []item, int) {
	s.stats.ByStatus[429]++
	if until := now.Add(after); until.After(s.blocked) {
		s.blocked = until
	}
	// Whole seconds as HTTP wants, except when a test has shrunk time below a second.
	secs := after.Seconds()
	if secs >= 1 {
		secs = math.Ceil(secs)
	}
	if s.opt.RetryAfterDates {
		// An HTTP date has whole seconds: round up, so the client waits at least as asked.
		w.Header().Set("Retry-After", s.opt.Now().Add(after+time.Second-1).UTC().Format(http.TimeFormat))
	} else {
		w.Header().Set("Retry-After", strconv.FormatFloat(secs, 'f', -1, 64))
	}
	apiError(w, 429, "TooManyRequests", "API calls quota exceeded! Maximum allowed: 100 per 60 seconds, 1500 per 3600 seconds")
	return 429, nil, -1
}

func randRead(b []byte) (int, error) { return rand.Read(b) }
