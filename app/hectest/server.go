// Package hectest is a stand-in for Splunk's HTTP Event Collector, for tests and the demo. It
// is faithful to shared/docs/splunk.md: the Splunk token scheme and its codes, gzip,
// concatenated JSON, partial batches (objects before a bad one are indexed), channels that
// acks require, read-once ack ids from 0 per channel, and switchable failures: busy replies,
// dropped connections, replies lost after indexing, acks that come late or never, 413. With
// Sticky it stands behind a load balancer that pins a client to one indexer by cookie: ack
// state lives on that indexer only, as on a real cluster. Channels belong to the indexer, not
// to a connection or a client: a new client that names an old channel (and, with Sticky, brings
// its cookie) sees that channel's ack ids as they are. Ack latency can follow a distribution with
// a long tail (SetAckLatency), and with ChannelIdle an idle channel is forgotten, as Splunk's
// ackIdleCleanup does.
//
// Indexer acknowledgement exists because HEC takes data before it is safely indexed: until a
// request's ack turns true, its events are in the pipeline, and a HEC restart (ForgetChannels)
// loses them along with the channels, so a client that trusts anything but a true ack loses
// data here as it would on Splunk. The idle cleanup forgets ack state only: the data it
// concerns was indexed long before.
// It records what was indexed (less what a restart lost) so that tests can compare.
package hectest

import (
	"encoding/json"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"ta-defender-alerts/app/loopback"
)

// Options configure the stand-in's token and limits.
type Options struct {
	Token    string
	Ack      bool     // the token has indexer acknowledgement
	Disabled bool     // the token is disabled
	Indexes  []string // indexes the token may write; empty: any
	MaxBody  int      // max_content_length in bytes; 0: no limit
	// Key names an event for the duplicate count (default: its exact bytes). Events are kept
	// whole unless CountOnly is set (large benchmarks).
	Key       func(event []byte) string
	CountOnly bool
	Seed      uint64
	// Sticky puts a load balancer in front: it pins a client to an indexer with a cookie
	// (named lbCookie), and a request without it, or with a cookie this balancer did not set, reaches
	// another indexer, which knows none of the channel's ack ids (they stay false forever).
	Sticky bool
	// ChannelIdle is Splunk's maxIdleTime with ackIdleCleanup = true: a channel without any
	// request (events or ack polls) for this long is dropped with its pending acks; sent on
	// again, its ack ids start at 0. 0 (the default): channels are never forgotten.
	ChannelIdle time.Duration
	// Now is the stand-in's clock (ack readiness, channel idleness); default time.Now.
	Now func() time.Time
}

// lbCookie is the sticky load balancer's cookie.
const lbCookie = "hec_lb_node"

// nodeSeq numbers indexers across every stand-in of the process, so that one balancer never
// takes another's cookie for its own.
var nodeSeq atomic.Int64

// Event is one indexed event.
type Event struct {
	Time       json.Number
	Host       string
	Source     string
	Sourcetype string
	Index      string
	Raw        json.RawMessage // the event object as received
}

// Stats are what the stand-in saw.
type Stats struct {
	Requests   int
	ByStatus   map[int]int
	Indexed    int // events indexed, duplicates included, less those lost in a restart
	Distinct   int // distinct keys indexed
	Duplicates int // events indexed more than once (Indexed - Distinct)
	AckQueries int // ack polls
	AckIDs     int // ack ids asked about, over all polls
	Dropped    int // connections dropped before indexing
	LostReply  int // replies lost after indexing
	AcksLost   int // acks that will never come
	// AckIDsGiven counts requests answered with an ack id: once it has grown, whether that
	// request's ack will come is decided (Requests grows before that).
	AckIDsGiven int
	Partial     int // requests that failed part-way
	NoCookie    int // Sticky: requests (events and ack polls) without this balancer's cookie
	// ForgottenAckIDs counts ack ids asked about on channels that HEC had forgotten (idle or
	// ForgetChannels) and that nobody has sent on since; they all answer false.
	ForgottenAckIDs   int
	ForgottenChannels int // channels dropped for idleness or by ForgetChannels
	// LostInRestart counts events that ForgetChannels took out of the index because their
	// request was still in the pipeline (its ack not ready yet, or never coming).
	LostInRestart int
}

// Server is the stand-in.
type Server struct {
	*loopback.Server
	opt Options

	mu       sync.Mutex
	rng      *mrand.Rand
	channels map[string]*channel // by indexer and channel
	forgot   map[string]bool     // channels dropped and not sent on since
	swept    time.Time           // last sweep for idle channels
	nodes    map[string]bool     // Sticky: the indexers this balancer has pinned clients to
	events   []Event
	counts   map[string]int
	stats    Stats
	pipeline []inPipeline // requests on ack channels whose ack may not be ready yet, in index order
	pruneAt  int          // len(pipeline) at which settled entries are next dropped

	busy, drop, lostReply, ackNever float64
	ackLatency                      func(r *mrand.Rand) time.Duration
	down                            bool
	reject                          func(event []byte) bool
}

type channel struct {
	next int64
	acks map[int64]ackState
	used time.Time // last request on the channel
}

type ackState struct {
	ready time.Time
	never bool
}

// inPipeline is a request taken on an ack channel whose ack may not be ready yet: a HEC
// restart before then loses its events, s.events[first:first+len(keys)] (none with CountOnly).
type inPipeline struct {
	channel string // indexer and channel
	ack     ackState
	first   int
	keys    []string
}

// New starts a stand-in on a loopback port.
func New(opt Options) *Server {
	s := &Server{opt: opt, rng: mrand.New(mrand.NewPCG(opt.Seed, 5)), channels: map[string]*channel{}, forgot: map[string]bool{}, counts: map[string]int{},
		nodes: map[string]bool{}, stats: Stats{ByStatus: map[int]int{}}}
	mux := http.NewServeMux()
	for _, p := range []string{"/services/collector", "/services/collector/event", "/services/collector/event/1.0"} {
		mux.HandleFunc("POST "+p, s.event)
	}
	mux.HandleFunc("POST /services/collector/ack", s.ack)
	mux.HandleFunc("GET /services/collector/health", s.health)
	mux.HandleFunc("GET /services/collector/health/1.0", s.health)
	s.Server = loopback.New(mux)
	return s
}

// SetFailures sets the share of event requests answered 503 busy, dropped before indexing,
// and indexed with the reply lost; and the share of acks that never come.
func (s *Server) SetFailures(busy, drop, lostReply, ackNever float64) {
	s.mu.Lock()
	s.busy, s.drop, s.lostReply, s.ackNever = busy, drop, lostReply, ackNever
	s.mu.Unlock()
}

// SetAckDelay makes acks turn true only this long after indexing (a constant latency; it
// replaces any SetAckLatency).
func (s *Server) SetAckDelay(d time.Duration) {
	s.SetAckLatency(func(*mrand.Rand) time.Duration { return d })
}

// SetAckLatency makes each ack turn true a random time after indexing, drawn by f from the
// stand-in's generator (seeded by Options.Seed) when the request is indexed; nil: at once.
// Latency.Sample gives a long-tailed f.
func (s *Server) SetAckLatency(f func(r *mrand.Rand) time.Duration) {
	s.mu.Lock()
	s.ackLatency = f
	s.mu.Unlock()
}

// Latency is an ack latency distribution with a long tail: log-normal with this median and
// 99th percentile, and a share TailShare of acks (keep it well under 1% so that P99 holds)
// taking between P99 and Tail instead, as under load on a real indexer.
type Latency struct {
	Median, P99 time.Duration
	Tail        time.Duration // the rare very long wait; 0: no tail
	TailShare   float64
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// Sample draws one latency.
func (l Latency) Sample(r *mrand.Rand) time.Duration {
	if l.Tail > l.P99 && l.TailShare > 0 && r.Float64() < l.TailShare {
		return l.P99 + time.Duration(r.Int64N(int64(l.Tail-l.P99)+1))
	}
	if l.Median <= 0 {
		return 0
	}
	sigma := 0.0
	if l.P99 > l.Median {
		sigma = math.Log(float64(l.P99)/float64(l.Median)) / z99
	}
	return time.Duration(float64(l.Median) * math.Exp(sigma*r.NormFloat64()))
}

// ForgetChannels is a HEC restart: every channel is dropped with its ack state, and the events
// of every request still in the pipeline (taken on an ack channel, its ack neither ready nor
// read: due later, or never) are lost: they leave Events, Count, Keys and Stats.Indexed,
// Distinct and Duplicates, and are counted in Stats.LostInRestart. Events whose ack was ready,
// and those sent without acks (a token without ack) were indexed and stay.
func (s *Server) ForgetChannels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.losePipeline(s.now())
	for key := range s.channels {
		s.forget(key)
	}
}

// losePipeline takes the events of every request whose ack is not ready at now out of the
// index, and empties the pipeline.
func (s *Server) losePipeline(now time.Time) {
	var lost []inPipeline // in index order, as the pipeline is
	for _, p := range s.pipeline {
		if p.ack.settled(now) {
			continue
		}
		lost = append(lost, p)
		for _, k := range p.keys {
			if s.counts[k]--; s.counts[k] <= 0 {
				delete(s.counts, k)
			}
		}
		s.stats.Indexed -= len(p.keys)
		s.stats.LostInRestart += len(p.keys)
	}
	s.pipeline, s.pruneAt = nil, 0
	if s.opt.CountOnly || len(lost) == 0 {
		return
	}
	kept := s.events[:lost[0].first]
	for i, p := range lost {
		end := len(s.events)
		if i+1 < len(lost) {
			end = lost[i+1].first
		}
		kept = append(kept, s.events[p.first+len(p.keys):end]...)
	}
	clear(s.events[len(kept):]) // let the lost events' bytes go
	s.events = kept
}

// SetDown makes HEC unhealthy: the health endpoint and every event request answer 503.
func (s *Server) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// Reject makes Splunk refuse events for which f is true as malformed (code 6).
func (s *Server) Reject(f func(event []byte) bool) { s.mu.Lock(); s.reject = f; s.mu.Unlock() }

// SetTokenDisabled disables the token (true) or enables it again (false), mid-run say.
func (s *Server) SetTokenDisabled(disabled bool) {
	s.mu.Lock()
	s.opt.Disabled = disabled
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
	st.Distinct = len(s.counts)
	st.Duplicates = st.Indexed - st.Distinct
	return st
}

// Events returns the indexed events (empty with CountOnly).
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Count returns how often the event with this key was indexed.
func (s *Server) Count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

// Keys returns every distinct key indexed, with its count.
func (s *Server) Keys() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		m[k] = v
	}
	return m
}
