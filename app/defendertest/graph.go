package defendertest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// GraphMode's list call: GET /v1.0/security/alerts_v2, its token check, query options,
// nextLink paging and error shape (docs/graph-and-incidents-api.md, section 1).

const (
	// GraphMaxTop is the most a Graph page holds: a larger $top is cut to it without an
	// error (observed by Elastic, elastic/integrations#20234; Microsoft documents no limit).
	GraphMaxTop = 1000
	// GraphPerMinute is the security service's limit per app and tenant (throttling-limits).
	GraphPerMinute = 150
	graphPath      = "/v1.0/security/alerts_v2"
)

// skipToken is what a nextLink's $skiptoken stands for: the query and where its next page
// starts, honoured until expires (on the service's clock, Options.Now).
type skipToken struct {
	q       query
	expires time.Time
}

// graphError writes Graph's error shape: code and message, and an innerError with the
// request's id, the date (no zone, as Graph writes it) and the caller's client-request-id.
func graphError(w http.ResponseWriter, r *http.Request, now time.Time, status int, code, msg string) {
	inner := map[string]string{"date": now.UTC().Format("2006-01-02T15:04:05"), "request-id": graphHeaders(w, r)}
	if c := r.Header.Get("client-request-id"); c != "" {
		inner["client-request-id"] = c
	}
	type graphErr struct {
		Code       string            `json:"code"`
		Message    string            `json:"message"`
		InnerError map[string]string `json:"innerError"`
	}
	body, _ := json.Marshal(map[string]graphErr{"error": {code, msg, inner}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// graphHeaders sets the ids every Graph reply carries and returns the request-id.
func graphHeaders(w http.ResponseWriter, r *http.Request) string {
	id := newUUID()
	w.Header().Set("request-id", id)
	if c := r.Header.Get("client-request-id"); c != "" {
		w.Header().Set("client-request-id", c)
	}
	w.Header().Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Stand-in","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"LO1"}}`)
	return id
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// graphNotFound answers any other path in GraphMode, the Alert API's included.
func (s *Server) graphNotFound(w http.ResponseWriter, r *http.Request) {
	seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	graphError(w, r, s.opt.Now(), http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Resource not found for the segment '%s'.", seg))
}

// authorizeGraph checks the bearer token as Graph does: one issued for the configured cloud's
// Graph (a token for the Alert API is another audience), not expired.
func (s *Server) authorizeGraph(r *http.Request, now time.Time) *refusal {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return &refusal{401, "InvalidAuthenticationToken", "Access token is empty."}
	}
	g, known := s.grantOf(tok)
	switch {
	case !known:
		return &refusal{401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."}
	case g.aud != s.opt.GraphHost || s.refuseTokens:
		return &refusal{401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."}
	case !now.Before(g.exp):
		return &refusal{401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."}
	}
	return nil
}

// parseGraph reads alerts_v2's query options ($filter, $top, $skip, $count, $skiptoken),
// or the query a $skiptoken stands for.
func (s *Server) parseGraph(raw string) (query, *refusal) {
	bad := func(code, format string, a ...any) (query, *refusal) {
		return query{}, &refusal{400, code, fmt.Sprintf(format, a...)}
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return bad("BadRequest", "Invalid query string: %v", err)
	}
	for k, v := range vals {
		if len(v) != 1 {
			return bad("BadRequest", "Query option '%s' was specified more than once, but it must be specified at most once.", k)
		}
	}
	if tok, given := vals["$skiptoken"]; given {
		st, ok := s.skips[tok[0]]
		if !ok || !s.opt.Now().Before(st.expires) {
			s.stats.LinksExpired++
			return bad("invalidRequest", "The $skiptoken is invalid or has expired. Run the query again.")
		}
		s.stats.Links++
		for _, l := range s.onLink {
			for _, id := range s.addAlertsLocked(l.n, l.at) {
				s.byID[id].versions[0].VisibleAt = s.opt.Now()
			}
		}
		s.onLink = nil
		if s.linksRestart {
			st.q.skip = 0 // a broken link: its query's first page again
		}
		return st.q, nil
	}
	q := query{top: s.opt.GraphPageSize}
	var link []string
	for k, v := range vals {
		switch k {
		case "$top":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return bad("BadRequest", "Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v[0])
			}
			q.top = min(n, GraphMaxTop) // silently, as Graph does
			link = append(link, "$top="+strconv.Itoa(q.top))
		case "$skip":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return bad("BadRequest", "Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", v[0])
			}
			q.skip = n
		case "$count":
			switch v[0] {
			case "true":
				q.count = true
			case "false":
			default:
				return bad("BadRequest", "'%s' is not a valid count option.", v[0])
			}
		case "$filter":
			f, err := parseGraphFilter(v[0])
			if err != nil {
				return bad("BadRequest", "%v", err)
			}
			if s.opt.GraphRefuseOr && f.root.has("or") {
				return bad("BadRequest", "Invalid filter clause: the operator 'or' is not supported for this resource.")
			}
			q.clauses, q.pred = f.lastUpdateRange(), f.predicate()
			link = append(link, "$filter="+strings.ReplaceAll(url.QueryEscape(v[0]), "+", "%20"))
		default:
			if strings.HasPrefix(k, "$") {
				return bad("BadRequest", "Query option '%s' is not supported by this resource.", k)
			}
			return bad("BadRequest", "Unrecognized query argument specified: '%s'.", k)
		}
	}
	sort.Strings(link)
	q.link = strings.Join(link, "&")
	return q, nil
}

// graphPage selects the page and what goes with it: a nextLink when the page is full (its
// $skiptoken stands for the same query from the next offset, so that updates while paging
// shift the pages as $skip does), the count on a first page if asked, and whether the caller
// sent Prefer: include-unknown-enum-members (a nextLink does not carry it).
func (s *Server) graphPage(rep *reply, r *http.Request, q query) {
	rep.page = s.selectPage(q)
	if s.opt.GraphMaxSkip > 0 && q.skip > s.opt.GraphMaxSkip {
		rep.page = nil // past the limit: an empty page, without a word
	}
	if q.count {
		rep.count = len(s.matching(q, s.opt.Now()))
	}
	served := len(rep.page)
	cut := s.opt.GraphShortPage > 0 && served > s.opt.GraphShortPage
	if cut {
		served = s.opt.GraphShortPage
		rep.page = rep.page[:served]
	}
	if q.top > 0 && len(rep.page) == q.top || cut {
		next := q
		next.skip, next.count = q.skip+served, false
		var b [18]byte
		_, _ = rand.Read(b[:])
		tok := base64.RawURLEncoding.EncodeToString(b[:])
		tnow := s.opt.Now()
		s.skips[tok] = skipToken{q: next, expires: tnow.Add(s.opt.SkipTokenLifetime)}
		if s.nSkips++; s.nSkips%256 == 0 {
			for k, st := range s.skips {
				if !tnow.Before(st.expires) {
					delete(s.skips, k)
				}
			}
		}
		rep.next = s.URL + graphPath + "?" + q.link
		if q.link != "" {
			rep.next += "&"
		}
		rep.next += "$skiptoken=" + tok
	}
	for _, p := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(p, ",") {
			rep.allEnums = rep.allEnums || strings.EqualFold(strings.TrimSpace(pref), "include-unknown-enum-members")
		}
	}
}

// graphHead writes the reply's headers and the page's opening up to its first alert.
func (s *Server) graphHead(w http.ResponseWriter, r *http.Request, buf []byte, rep reply) []byte {
	graphHeaders(w, r)
	if rep.allEnums {
		w.Header().Set("Preference-Applied", "include-unknown-enum-members")
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	buf = append(buf, `{"@odata.context":"`...)
	buf = append(buf, s.URL...)
	buf = append(buf, `/v1.0/$metadata#security/alerts_v2"`...)
	if rep.count >= 0 {
		buf = append(buf, `,"@odata.count":`...)
		buf = strconv.AppendInt(buf, int64(rep.count), 10)
	}
	if rep.next != "" {
		buf = append(buf, `,"@odata.nextLink":`...)
		buf = strconv.AppendQuote(buf, rep.next)
	}
	return append(buf, `,"value":[`...)
}
