// Command standin runs the Defender and HEC stand-ins in a process of their own, for the
// benchmark and fault suites: a backlog of alerts made on demand (rendered per request, not
// held as JSON), quotas lifted, and a control port that reports what HEC indexed and changes
// the stand-ins while the collector runs. -mode graph-alerts serves Graph's alerts_v2 (Graph
// tokens, field names and paging) instead of the Alert API; -mode incidents serves the Defender
// XDR incidents API (-alerts then counts incidents, each grouping 1 to 50 alerts).
//
// HEC's adversity is set by flags: ack latency as a long-tailed distribution (-ack-median,
// -ack-p99, -ack-tail, -ack-tail-share), a share of acks that never come (-ack-lost), a
// share of busy replies (-busy) and the idle time after which HEC forgets a channel
// (-channel-idle). The control port serves:
//
//	GET  /stats        what the API and HEC saw (JSON)
//	POST /forget       HEC forgets every channel and its ack state, as a HEC restart does
//	POST /add          one new alert, stamped now; replies {"id": ..., "added": RFC 3339 time}
//	GET  /seen?id=ID   when HEC first indexed that added alert: {"seen": time} or 404
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hectest"
)

func main() {
	n := flag.Int("alerts", 10000, "alerts in the backlog")
	days := flag.Float64("days", 3, "the backlog's lastUpdateTime spread, in days, ending now")
	ack := flag.Bool("ack", true, "the HEC token has indexer acknowledgement")
	tenant := flag.String("tenant", "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "tenant id")
	client := flag.String("client", "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", "client id")
	secret := flag.String("secret", "bench-secret", "client secret")
	token := flag.String("hec-token", "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8", "HEC token")
	mode := flag.String("mode", "endpoint-alerts", "the API served: endpoint-alerts (/api/alerts), graph-alerts (Graph's /v1.0/security/alerts_v2) or incidents (Defender XDR's /api/incidents)")
	order := flag.String("order", "lastupdate", "the API's list order: lastupdate, lastupdate-ties, oldest, shuffled, created or id")
	revisit := flag.Int("revisit", 0, "give every n-th alert a later second version, so that creation and lastUpdateTime orders differ (0: none)")
	var lat hectest.Latency
	flag.DurationVar(&lat.Median, "ack-median", 0, "HEC: median ack latency (log-normal; 0: acks true at once)")
	flag.DurationVar(&lat.P99, "ack-p99", 0, "HEC: 99th percentile of the ack latency (0 or <= median: constant)")
	flag.DurationVar(&lat.Tail, "ack-tail", 0, "HEC: the longest ack latency of the tail (0: no tail)")
	flag.Float64Var(&lat.TailShare, "ack-tail-share", 0, "HEC: share of acks that take between -ack-p99 and -ack-tail")
	ackLost := flag.Float64("ack-lost", 0, "HEC: share of acks that never come")
	busy := flag.Float64("busy", 0, "HEC: share of event requests answered 503 busy")
	idle := flag.Duration("channel-idle", 0, "HEC: forget a channel idle this long (0: never)")
	seed := flag.Uint64("seed", 1, "HEC: seed of the latency and failure draws")
	flag.Parse()
	ord, err := defendertest.ParseOrder(*order)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin: -order:", err)
		os.Exit(2)
	}
	md, err := defendertest.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin: -mode:", err)
		os.Exit(2)
	}
	if err := checkLatency(lat, *ackLost, *busy); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(2)
	}

	api := defendertest.New(defendertest.Options{Mode: md, TenantID: *tenant, ClientID: *client, ClientSecret: *secret,
		PerMinute: 1 << 30, PerHour: 1 << 30, TokenLifetime: time.Hour})
	now := time.Now()
	span := time.Duration(*days * 24 * float64(time.Hour))
	if *n > 0 {
		api.AddAlerts(*n, func(i int) time.Time { return now.Add(-span).Add(time.Duration(i) * (span / time.Duration(*n))) })
	}
	if *revisit > 0 {
		api.Revisit(*revisit, now)
	}
	api.SetOrder(ord)
	seen := newWatch()
	key := func(raw []byte) string {
		id, k := eventKey(md, raw)
		seen.indexed(id)
		return k
	}
	hec := hectest.New(hectest.Options{Token: *token, Ack: *ack, CountOnly: true, Key: key, ChannelIdle: *idle, Seed: *seed})
	if lat.Median > 0 {
		hec.SetAckLatency(lat.Sample)
	}
	hec.SetFailures(*busy, 0, 0, *ackLost)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		a, h := api.Stats(), hec.Stats()
		_ = json.NewEncoder(w).Encode(map[string]any{"api_calls": a.APICalls, "api_by_status": a.ByStatus, "api_bytes": a.BytesOut, "api_alerts": a.AlertsReturned,
			"hec_requests": h.Requests, "hec_busy": h.ByStatus[503], "indexed": h.Indexed, "distinct": h.Distinct, "duplicates": h.Duplicates,
			"ack_queries": h.AckQueries, "ack_ids": h.AckIDs, "acks_lost": h.AcksLost,
			"forgotten_ack_ids": h.ForgottenAckIDs, "forgotten_channels": h.ForgottenChannels})
	})
	mux.HandleFunc("POST /forget", func(w http.ResponseWriter, _ *http.Request) {
		hec.ForgetChannels()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, _ *http.Request) {
		at := time.Now()
		ids := api.AddAlerts(1, func(int) time.Time { return at })
		seen.watch(ids[0])
		_ = json.NewEncoder(w).Encode(map[string]any{"id": ids[0], "added": at})
	})
	mux.HandleFunc("GET /seen", func(w http.ResponseWriter, r *http.Request) {
		t, ok := seen.when(r.URL.Query().Get("id"))
		if !ok {
			http.Error(w, "not indexed", http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"seen": t})
	})
	go func() { _ = http.Serve(ln, mux) }()
	// One line for the harness: where everything is.
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"api": api.URL, "hec": hec.URL, "control": "http://" + ln.Addr().String()})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	api.Close()
	hec.Close()
}

// eventKey reads a record's id and its id@lastUpdateTime (Graph: lastUpdateDateTime;
// incidents: incidentId, a number) without a full decode: the stand-in must not be the
// bottleneck.
func eventKey(md defendertest.Mode, raw []byte) (id, key string) {
	var a struct {
		ID   string          `json:"id"`
		Inc  json.RawMessage `json:"incidentId"`
		LUT  string          `json:"lastUpdateTime"`
		LUDT string          `json:"lastUpdateDateTime"`
	}
	_ = json.Unmarshal(raw, &a)
	id = a.ID
	if md == defendertest.IncidentsMode {
		id = string(a.Inc)
	}
	return id, id + "@" + a.LUT + a.LUDT
}

// checkLatency refuses settings the stand-in would silently misread.
func checkLatency(l hectest.Latency, ackLost, busy float64) error {
	var bad []string
	if l.Median < 0 || l.P99 < 0 || l.Tail < 0 {
		bad = append(bad, "ack latencies must not be negative")
	}
	if l.TailShare < 0 || l.TailShare >= 0.01 {
		bad = append(bad, "-ack-tail-share must be in [0, 0.01) so that -ack-p99 holds")
	}
	if l.TailShare > 0 && l.Tail <= l.P99 {
		bad = append(bad, "-ack-tail must be longer than -ack-p99")
	}
	if ackLost < 0 || ackLost > 1 || busy < 0 || busy > 1 {
		bad = append(bad, "-ack-lost and -busy are shares between 0 and 1")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

// watch remembers when HEC first indexed each alert added through /add.
type watch struct {
	mu   sync.Mutex
	want map[string]bool
	seen map[string]time.Time
}

func newWatch() *watch { return &watch{want: map[string]bool{}, seen: map[string]time.Time{}} }

func (w *watch) watch(id string) { w.mu.Lock(); w.want[id] = true; w.mu.Unlock() }

func (w *watch) indexed(id string) {
	w.mu.Lock()
	if w.want[id] {
		if _, ok := w.seen[id]; !ok {
			w.seen[id] = time.Now()
		}
	}
	w.mu.Unlock()
}

func (w *watch) when(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.seen[id]
	return t, ok
}
