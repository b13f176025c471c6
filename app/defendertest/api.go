package defendertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The list call of either mode (GET /api/alerts, or alerts_v2 in GraphMode), after the
// token, quota, query and failure checks.

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
	pretty := s.pretty
	s.mu.Unlock()
	if stall {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(d):
		}
	}
	rep, ok := s.admit(w, r, now)
	if !ok {
		return
	}
	page, cut := rep.page, rep.cut
	buf := make([]byte, 0, 64<<10)
	switch {
	case rep.graph:
		buf = s.graphHead(w, r, buf, rep)
	case rep.incidents:
		buf = s.incidentsHead(w, buf)
	default:
		w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		buf = append(buf, `{"@odata.context":"`...)
		buf = append(buf, s.URL...)
		buf = append(buf, `/api/$metadata#Alerts","value":[`...)
	}
	for i, it := range page {
		if i > 0 {
			buf = append(buf, ',')
		}
		if cut == i {
			_, _ = w.Write(buf[:len(buf)/2+1])
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		before := len(buf)
		switch {
		case rep.graph:
			buf = renderGraph(buf, it.a, it.v, rep.allEnums)
		case rep.incidents:
			buf = renderIncident(buf, it.a, it.v)
		default:
			buf = render(buf, it.a, it.v)
		}
		s.countBytes(len(buf) - before)
		if len(buf) >= 48<<10 && !pretty { // a pretty page is indented whole, below
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
	if pretty {
		var ind bytes.Buffer
		if err := json.Indent(&ind, buf, "", "    "); err != nil {
			panic("defendertest: a page is not JSON: " + err.Error())
		}
		buf = ind.Bytes()
	}
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

// reply is what admit selected for a call that passed its checks.
type reply struct {
	page      []item
	cut       int    // where to cut the body off (-1: don't)
	graph     bool   // render in GraphMode
	incidents bool   // render in IncidentsMode
	next      string // GraphMode: the @odata.nextLink, or ""
	count     int    // GraphMode: the @odata.count, or -1
	allEnums  bool   // GraphMode: Prefer: include-unknown-enum-members was sent
}

// admit checks the call and selects its page, in the real service's order: the token, then
// the quota (a refused token does not count against it), then the permission, the query and
// any failure set for this call, then the page. It writes an error reply itself and returns
// false, or true with the page and where to cut it.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, now time.Time) (reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.APICalls++
	s.calls = append(s.calls, now)
	if no := s.authorize(r, now); no != nil {
		return s.refuse(w, r, no)
	}
	if wait, over := s.overQuota(now); over {
		return s.throttle(w, r, now, wait, http.StatusTooManyRequests)
	}
	if s.down > 0 {
		s.down--
		return s.throttle(w, r, now, s.downAfter, http.StatusServiceUnavailable)
	}
	q, no := s.acceptQuery(r)
	if no != nil {
		return s.refuse(w, r, no)
	}
	rep := reply{cut: -1, count: -1, graph: s.opt.Mode == GraphMode, incidents: s.opt.Mode == IncidentsMode}
	if rep.graph {
		s.graphPage(&rep, r, q)
	} else {
		rep.page = s.selectPage(q)
	}
	if s.cutRate > 0 && s.rng.Float64() < s.cutRate {
		rep.cut = s.rng.IntN(len(rep.page) + 1)
		s.stats.CutOff++
	}
	s.updateLocked(s.updatesPerCall)
	s.stats.ByStatus[200]++
	s.stats.AlertsReturned += len(rep.page)
	return rep, true
}

// refusal is an error reply of the API.
type refusal struct {
	status    int
	code, msg string
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, no *refusal) (reply, bool) {
	s.stats.ByStatus[no.status]++
	s.errorReply(w, r, no.status, no.code, no.msg)
	return reply{}, false
}

// errorReply writes an error in the mode's shape.
func (s *Server) errorReply(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if s.opt.Mode == GraphMode {
		graphError(w, r, s.opt.Now(), status, code, msg)
		return
	}
	apiError(w, status, code, msg)
}

// authorize checks the bearer token: one this stand-in issued for this mode's audience, not
// expired, and not refused by RefuseTokens.
func (s *Server) authorize(r *http.Request, now time.Time) *refusal {
	if s.opt.Mode == GraphMode {
		return s.authorizeGraph(r, now)
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return &refusal{401, "Unauthorized", "Authorization header is missing or not a Bearer token"}
	}
	aud := Resource
	if s.opt.Mode == IncidentsMode {
		aud = s.opt.XDRHost // a token for the Alert API (api.securitycenter) is another audience
	}
	if g, known := s.grantOf(tok); !known || !now.Before(g.exp) || s.refuseTokens || g.aud != aud {
		return &refusal{401, "Unauthorized", "The access token is invalid or has expired"}
	}
	return nil
}

// overQuota counts the call against the quota, or says how long the client must wait: the
// rest of a storm set by Throttle, or until the oldest call of a full Minute or Hour leaves
// it (429s do not count against the quota). A call that comes before an earlier Retry-After
// has passed is a violation.
func (s *Server) overQuota(now time.Time) (wait time.Duration, over bool) {
	if now.Before(s.blocked) {
		s.stats.Violations++
	}
	if s.storm > 0 {
		s.storm--
		return s.stormAfter, true
	}
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
			return q.d - now.Sub(oldest), true
		}
	}
	s.quota = append(s.quota, now)
	return 0, false
}

// acceptQuery checks the app's permission and the query, then fails the call if FailEvery
// or SetFailures says so.
func (s *Server) acceptQuery(r *http.Request) (query, *refusal) {
	graph := s.opt.Mode == GraphMode
	if s.opt.NoPermission {
		if graph {
			return query{}, &refusal{403, "Forbidden", "Missing application roles. API required roles: SecurityAlert.Read.All, SecurityAlert.ReadWrite.All. Application roles: ."}
		}
		if s.opt.Mode == IncidentsMode {
			return query{}, &refusal{403, "Forbidden", "The application does not have any of the required application permissions (Incident.ReadWrite.All, Incident.Read.All) to access the resource."}
		}
		return query{}, &refusal{403, "Forbidden", "The application does not have any of the required application permissions (Alert.ReadWrite.All, Alert.Read.All) to access the resource."}
	}
	var q query
	switch {
	case graph:
		var no *refusal
		if q, no = s.parseGraph(r.URL.RawQuery); no != nil {
			return q, no
		}
	case s.opt.Mode == IncidentsMode:
		var no *refusal
		if q, no = parseIncidents(r.URL.RawQuery); no != nil {
			return q, no
		}
	default:
		var err error
		if q, err = parseQuery(r.URL.RawQuery); err != nil {
			return query{}, &refusal{400, "BadRequest", err.Error()}
		}
	}
	s.admitted++
	fail := &refusal{500, "InternalServerError", "An unexpected error occurred"}
	if graph {
		fail = &refusal{500, "generalException", "An unspecified error has occurred."}
	}
	if s.failEvery > 0 && s.admitted%s.failEvery == 0 {
		return query{}, fail
	}
	if s.fail500 > 0 && s.rng.Float64() < s.fail500 {
		return query{}, fail
	}
	return q, nil
}

// selectPage cuts the page out of the visible versions the query selects, in the order set
// (SetOrder): $skip of them passed over (unless IgnoreSkip), at most $top kept.
func (s *Server) selectPage(q query) []item {
	tnow := s.opt.Now()
	var page []item
	if s.order == NewestFirst && !s.anyDelays && onlyLastUpdate(q) {
		page = s.fromIndex(q, tnow) // in order already
	} else {
		page = s.matching(q, tnow)
		s.sortPage(page)
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
	return append([]item(nil), page...)
}

// fromIndex answers a lastUpdateTime range from a sorted index, newest first, instead of
// scanning and sorting (large backlogs): up to $skip+$top versions from the range's top.
func (s *Server) fromIndex(q query, tnow time.Time) []item {
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
	var page []item
	lo, hi := q.lutRange()
	start := sort.Search(len(s.sorted), func(i int) bool { return !hi(s.sorted[i].v.LastUpdate) })
	for i := start; i < len(s.sorted) && len(page) < q.skip+q.top && lo(s.sorted[i].v.LastUpdate); i++ {
		page = append(page, s.sorted[i])
	}
	return page
}

// matching returns every visible version the query selects, in the order the alerts came.
func (s *Server) matching(q query, tnow time.Time) []item {
	var page []item
	for _, a := range s.alerts {
		if v, ok := a.visible(tnow); ok && q.match(a, v) {
			page = append(page, item{a, v})
		}
	}
	return page
}

// sortPage puts the selected versions in the order set by SetOrder.
func (s *Server) sortPage(page []item) {
	switch s.order {
	case NewestFirst:
		sort.SliceStable(page, func(i, j int) bool { return page[i].v.LastUpdate.After(page[j].v.LastUpdate) })
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
}

// throttle refuses the call with status (429, or 503 from Unavailable) and a Retry-After.
func (s *Server) throttle(w http.ResponseWriter, r *http.Request, now time.Time, after time.Duration, status int) (reply, bool) {
	s.stats.ByStatus[status]++
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
	switch {
	case s.opt.Mode == GraphMode && status == http.StatusTooManyRequests:
		s.errorReply(w, r, status, "TooManyRequests", fmt.Sprintf("Too many requests. Retry after %s seconds.", w.Header().Get("Retry-After")))
	case s.opt.Mode == IncidentsMode && status == http.StatusTooManyRequests:
		apiError(w, status, "TooManyRequests", fmt.Sprintf("API calls quota exceeded! Maximum allowed: %d per %d seconds, %d per %d seconds",
			s.opt.PerMinute, int(s.opt.Minute.Seconds()), s.opt.PerHour, int(s.opt.Hour.Seconds())))
	case status == http.StatusTooManyRequests:
		apiError(w, status, "TooManyRequests", "API calls quota exceeded! Maximum allowed: 100 per 60 seconds, 1500 per 3600 seconds")
	case s.opt.Mode == GraphMode:
		s.errorReply(w, r, status, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later.")
	default:
		apiError(w, status, "ServiceUnavailable", "The service is temporarily unavailable.")
	}
	return reply{}, false
}

func randRead(b []byte) (int, error) { return rand.Read(b) }
