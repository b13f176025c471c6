package hectest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	gzip "github.com/klauspost/compress/gzip"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The collector's endpoints: events, acks and health, behind the token and channel checks
// and, with Sticky, the load balancer.

func (s *Server) reply(w http.ResponseWriter, status int, body any) {
	s.stats.ByStatus[status]++
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type msg struct {
	Text    string `json:"text"`
	Code    int    `json:"code"`
	Invalid *int   `json:"invalid-event-number,omitempty"`
	AckID   *int64 `json:"ackId,omitempty"`
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// auth checks the token and, on an ack token, the channel, and returns the channel's key
// (indexer and channel; "" without ack). It writes the error reply itself.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		s.reply(w, 401, msg{Text: "Token is required", Code: 2})
		return "", false
	}
	tok, ok := strings.CutPrefix(h, "Splunk ")
	if !ok {
		s.reply(w, 401, msg{Text: "Invalid authorization", Code: 3})
		return "", false
	}
	if tok != s.opt.Token {
		s.reply(w, 403, msg{Text: "Invalid token", Code: 4})
		return "", false
	}
	if s.opt.Disabled {
		s.reply(w, 403, msg{Text: "Token disabled", Code: 1})
		return "", false
	}
	node := s.route(w, r)
	ch := r.Header.Get("X-Splunk-Request-Channel")
	if ch == "" {
		ch = r.URL.Query().Get("channel")
	}
	if !s.opt.Ack {
		return "", true // a channel on a token without ack is fine, and unused
	}
	if ch == "" {
		s.reply(w, 400, msg{Text: "Data channel is missing", Code: 10})
		return "", false
	}
	if !guidRE.MatchString(ch) {
		s.reply(w, 400, msg{Text: "Invalid data channel", Code: 11})
		return "", false
	}
	return node + "/" + ch, true
}

func (s *Server) now() time.Time {
	if s.opt.Now != nil {
		return s.opt.Now()
	}
	return time.Now()
}

// lookup returns the channel's state, marked as used now, or nil when HEC does not know it and
// create is false. State is kept by indexer and channel only, never by connection or client. A
// channel idle past ChannelIdle is forgotten first, so that one sent on again starts at 0.
func (s *Server) lookup(key string, create bool) *channel {
	now := s.now()
	s.sweep(now)
	c := s.channels[key]
	if c != nil && s.idle(c, now) {
		s.forget(key)
		c = nil
	}
	if c == nil {
		if !create {
			return nil
		}
		c = &channel{acks: map[int64]ackState{}}
		s.channels[key] = c
		delete(s.forgot, key) // a new channel under the old name: its ids start at 0
	}
	c.used = now
	return c
}

func (s *Server) idle(c *channel, now time.Time) bool {
	return s.opt.ChannelIdle > 0 && now.Sub(c.used) >= s.opt.ChannelIdle
}

// sweep forgets every idle channel, at most once per ChannelIdle, so that channels nobody
// comes back to do not pile up.
func (s *Server) sweep(now time.Time) {
	if s.opt.ChannelIdle <= 0 || now.Sub(s.swept) < s.opt.ChannelIdle {
		return
	}
	s.swept = now
	for key, c := range s.channels {
		if s.idle(c, now) {
			s.forget(key)
		}
	}
}

// forget drops a channel with its ack state. Its requests leave the pipeline: after an idle
// cleanup they count as indexed (their data was indexed long before), and ForgetChannels has
// already taken the ones it loses out of the index.
func (s *Server) forget(key string) {
	if len(s.pipeline) > 0 {
		s.pipeline = slices.DeleteFunc(s.pipeline, func(p inPipeline) bool { return p.channel == key })
	}
	delete(s.channels, key)
	s.forgot[key] = true
	s.stats.ForgottenChannels++
}

// route is the sticky load balancer: the indexer named by its cookie, or a new one (with the
// cookie to come back to it). Without Sticky there is one indexer.
func (s *Server) route(w http.ResponseWriter, r *http.Request) string {
	if !s.opt.Sticky {
		return ""
	}
	if c, err := r.Cookie(lbCookie); err == nil && s.nodes[c.Value] {
		return c.Value
	}
	s.stats.NoCookie++
	node := fmt.Sprintf("indexer-%d", nodeSeq.Add(1))
	s.nodes[node] = true
	http.SetCookie(w, &http.Cookie{Name: lbCookie, Value: node, Path: "/", HttpOnly: true})
	return node
}

func (s *Server) event(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	drop := s.drop > 0 && s.rng.Float64() < s.drop
	s.mu.Unlock()
	if drop {
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
		panic(http.ErrAbortHandler) // the connection drops; nothing indexed
	}
	raw, err := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.reply(w, 400, msg{Text: "Invalid data format", Code: 6})
		return
	}
	key, ok := s.auth(w, r)
	if !ok {
		return
	}
	var ch *channel
	if key != "" {
		ch = s.lookup(key, true)
	}
	if s.down {
		s.reply(w, 503, msg{Text: "Server is busy", Code: 9})
		return
	}
	if s.busy > 0 && s.rng.Float64() < s.busy {
		w.Header().Set("Retry-After", "0")
		s.reply(w, 503, msg{Text: "Server is busy", Code: 9})
		return
	}
	if s.opt.MaxBody > 0 && len(raw) > s.opt.MaxBody {
		s.stats.ByStatus[413]++
		http.Error(w, fmt.Sprintf("Content-Length of %d too large (maximum is %d)", len(raw), s.opt.MaxBody), 413)
		return
	}
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			raw, err = io.ReadAll(zr)
		}
		if err != nil {
			s.reply(w, 400, msg{Text: "Invalid data format", Code: 6})
			return
		}
	default:
		s.stats.ByStatus[415]++
		http.Error(w, "Unsupported Content-Encoding: "+enc, 415)
		return
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		s.reply(w, 400, msg{Text: "No data", Code: 5})
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var batch []Event
	fail := func(k int, text string, code int) {
		// Objects before k are indexed; the rest of the request is not. On an ack channel they
		// are in the pipeline like any request's, though no ack id tells the client when they
		// leave it.
		first, keys := s.index(batch)
		if ch != nil {
			s.enter(key, first, keys, s.ackState(false))
		}
		s.stats.Partial++
		s.reply(w, 400, msg{Text: text, Code: code, Invalid: &k})
	}
	for k := 0; ; k++ {
		var env struct {
			Time       json.Number     `json:"time"`
			Host       string          `json:"host"`
			Source     string          `json:"source"`
			Sourcetype string          `json:"sourcetype"`
			Index      string          `json:"index"`
			Event      json.RawMessage `json:"event"`
		}
		if err := dec.Decode(&env); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			fail(k, "Invalid data format", 6)
			return
		}
		switch ev := bytes.TrimSpace(env.Event); {
		case ev == nil:
			fail(k, "Event field is required", 12)
			return
		case string(ev) == `""` || string(ev) == "null":
			fail(k, "Event field cannot be blank", 13)
			return
		case s.reject != nil && s.reject(ev):
			fail(k, "Invalid data format", 6)
			return
		}
		if env.Index != "" && len(s.opt.Indexes) > 0 && !slices.Contains(s.opt.Indexes, env.Index) {
			fail(k, "Incorrect index", 7)
			return
		}
		batch = append(batch, Event{Time: env.Time, Host: env.Host, Source: env.Source, Sourcetype: env.Sourcetype, Index: env.Index, Raw: env.Event})
	}
	first, keys := s.index(batch)
	if s.lostReply > 0 && s.rng.Float64() < s.lostReply {
		s.stats.LostReply++
		if ch != nil {
			// HEC does not know the reply was lost: the request has its ack id, which answers
			// true once indexed, like any other.
			id := ch.next
			ch.next++
			st := s.ackState(false)
			ch.acks[id] = st
			s.enter(key, first, keys, st)
		}
		panic(http.ErrAbortHandler) // indexed, but the reply never leaves

	}
	out := msg{Text: "Success", Code: 0}
	if ch != nil {
		id := ch.next
		ch.next++
		st := s.ackState(true)
		s.stats.AckIDsGiven++
		ch.acks[id] = st
		s.enter(key, first, keys, st)
		out.AckID = &id
	}
	s.reply(w, 200, out)
}

// ackState is the ack of a request indexed now: ready after the ack latency, or never (drawn
// only when mayLose, so that requests without an ack id leave the generator's sequence as it
// was for the others).
func (s *Server) ackState(mayLose bool) ackState {
	st := ackState{ready: s.now()}
	if s.ackLatency != nil {
		st.ready = st.ready.Add(s.ackLatency(s.rng))
	}
	if mayLose && s.ackNever > 0 && s.rng.Float64() < s.ackNever {
		st.never = true
		s.stats.AcksLost++
	}
	return st
}

// index records a batch and returns where its events start in s.events and their keys.
func (s *Server) index(batch []Event) (first int, keys []string) {
	first = len(s.events)
	keys = make([]string, 0, len(batch))
	for _, e := range batch {
		key := string(e.Raw)
		if s.opt.Key != nil {
			key = s.opt.Key(e.Raw)
		}
		keys = append(keys, key)
		s.counts[key]++
		s.stats.Indexed++
		if !s.opt.CountOnly {
			s.events = append(s.events, e)
		}
	}
	return first, keys
}

// enter puts a request indexed on channel key in the pipeline until its ack is ready. One
// whose ack is ready at once is settled and never enters. Settled entries are dropped
// whenever the pipeline has doubled since the last look, so it holds about the requests in
// flight.
func (s *Server) enter(key string, first int, keys []string, st ackState) {
	now := s.now()
	if len(keys) == 0 || st.settled(now) {
		return
	}
	if len(s.pipeline) >= s.pruneAt {
		s.pipeline = slices.DeleteFunc(s.pipeline, func(p inPipeline) bool { return p.ack.settled(now) })
		s.pruneAt = 2*len(s.pipeline) + 64
	}
	s.pipeline = append(s.pipeline, inPipeline{channel: key, ack: st, first: first, keys: keys})
}

func (a ackState) settled(now time.Time) bool { return !a.never && !now.Before(a.ready) }

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.AckQueries++
	if !s.opt.Ack {
		if h := r.Header.Get("Authorization"); h == "Splunk "+s.opt.Token {
			s.reply(w, 400, msg{Text: "ACK is disabled", Code: 14})
			return
		}
	}
	key, ok := s.auth(w, r)
	if !ok {
		return
	}
	var req struct {
		Acks []int64 `json:"acks"`
	}
	if json.Unmarshal(raw, &req) != nil {
		s.reply(w, 400, msg{Text: "Invalid data format", Code: 6})
		return
	}
	s.stats.AckIDs += len(req.Acks)
	// Asking about a channel HEC does not know (never used on this indexer, idle past
	// ChannelIdle, or dropped by a restart) neither creates it nor fails: splunk.md says only
	// that the channel and its pending acks are removed, so every id answers false, the answer
	// that never proves anything either way. Ids asked about a forgotten channel are counted.
	var ch *channel
	if key != "" {
		ch = s.lookup(key, false)
	}
	if ch == nil && s.forgot[key] {
		s.stats.ForgottenAckIDs += len(req.Acks)
	}
	res := map[string]bool{}
	now := s.now()
	for _, id := range req.Acks {
		if ch == nil {
			res[strconv.FormatInt(id, 10)] = false
			continue
		}
		st, ok := ch.acks[id]
		done := ok && !st.never && !now.Before(st.ready)
		res[strconv.FormatInt(id, 10)] = done
		if done {
			delete(ch.acks, id) // read once
		}
	}
	s.reply(w, 200, map[string]any{"acks": res})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.reply(w, 503, msg{Text: "HEC is unhealthy, queues are full", Code: 18})
		return
	}
	s.reply(w, 200, msg{Text: "HEC is healthy", Code: 17})
}
