package hectest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/hectest"
)

const (
	tToken = "3c8e6f2a-1b4d-4e7f-9a0c-5d2e8b1f7a63"
	chanG  = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	chanH  = "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
)

// clock is a settable clock for the stand-in, so that seconds and minutes pass at once.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// newClient is a separate client process: its own connections and cookie jar.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second}
}

func post(t *testing.T, c *http.Client, url, channel, cookie, body string) (int, map[string]json.RawMessage) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Splunk "+tToken)
	req.Header.Set("X-Splunk-Request-Channel", channel)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp.StatusCode, out
}

// send sends one event on the channel and returns its ack id.
func send(t *testing.T, c *http.Client, srv *hectest.Server, channel, cookie string) int64 {
	t.Helper()
	status, out := post(t, c, srv.URL+"/services/collector/event", channel, cookie, `{"event":"e"}`)
	var id int64
	if status != 200 || json.Unmarshal(out["ackId"], &id) != nil {
		t.Fatalf("send on %s: %d %v", channel, status, out)
	}
	return id
}

// poll asks about ack ids on the channel and returns the answer, as "id:true id:false ...".
func poll(t *testing.T, c *http.Client, srv *hectest.Server, channel, cookie string, ids ...int64) string {
	t.Helper()
	body, _ := json.Marshal(map[string][]int64{"acks": ids})
	status, out := post(t, c, srv.URL+"/services/collector/ack", channel, cookie, string(body))
	var acks map[string]bool
	if status != 200 || json.Unmarshal(out["acks"], &acks) != nil {
		t.Fatalf("poll on %s: %d %v", channel, status, out)
	}
	var parts []string
	for _, id := range ids {
		v, ok := acks[fmt.Sprint(id)]
		if !ok {
			t.Fatalf("poll on %s: no answer for id %d in %v", channel, id, acks)
		}
		parts = append(parts, fmt.Sprintf("%d:%t", id, v))
	}
	return strings.Join(parts, " ")
}

func TestAckLatencyDistribution(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		set      func(s *hectest.Server)
		p50      [2]time.Duration // bounds, inclusive
		p99      [2]time.Duration
		noP99    bool
		over     time.Duration // share of acks later than this ...
		overWant [2]float64    // ... within these bounds (zero: not checked)
		max      time.Duration // no ack later than this
	}{
		{
			name: "log-normal, median 20ms, p99 100ms", n: 1500,
			set: func(s *hectest.Server) {
				s.SetAckLatency(hectest.Latency{Median: 20 * time.Millisecond, P99: 100 * time.Millisecond}.Sample)
			},
			p50: [2]time.Duration{17 * time.Millisecond, 23 * time.Millisecond},
			p99: [2]time.Duration{80 * time.Millisecond, 125 * time.Millisecond},
			// a constant would have no acks past twice the median
			over: 40 * time.Millisecond, overWant: [2]float64{0.10, 0.22},
			max: 2 * time.Second,
		},
		{
			name: "rare very long tail", n: 1500,
			set: func(s *hectest.Server) {
				s.SetAckLatency(hectest.Latency{Median: 10 * time.Millisecond, P99: 20 * time.Millisecond, Tail: time.Second, TailShare: 0.05}.Sample)
			},
			p50:   [2]time.Duration{9 * time.Millisecond, 12 * time.Millisecond},
			noP99: true, // the tail is 5%
			over:  100 * time.Millisecond, overWant: [2]float64{0.035, 0.065},
			max: time.Second,
		},
		{
			name: "constant, SetAckDelay", n: 50,
			set: func(s *hectest.Server) { s.SetAckDelay(30 * time.Millisecond) },
			p50: [2]time.Duration{30 * time.Millisecond, 30 * time.Millisecond},
			p99: [2]time.Duration{30 * time.Millisecond, 30 * time.Millisecond},
			max: 30 * time.Millisecond,
		},
		{
			name: "default, at once", n: 50,
			set: func(*hectest.Server) {},
			p50: [2]time.Duration{0, 0},
			p99: [2]time.Duration{0, 0},
			max: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			srv := hectest.New(hectest.Options{Token: tToken, Ack: true, CountOnly: true, Seed: 11, Now: clk.Now})
			defer srv.Close()
			tt.set(srv)
			c := newClient(t)
			// Every request is indexed at the same instant; the clock then steps forward and the
			// time at which each id first answers true is its latency.
			var pending []int64
			for range tt.n {
				pending = append(pending, send(t, c, srv, chanG, ""))
			}
			var got []time.Duration
			start := clk.Now()
			for len(pending) > 0 {
				el := clk.Now().Sub(start)
				if el > tt.max+time.Second {
					t.Fatalf("%d acks still false after %v", len(pending), el)
				}
				ans := strings.Fields(poll(t, c, srv, chanG, "", pending...))
				var still []int64
				for i, id := range pending {
					if ans[i] == fmt.Sprintf("%d:true", id) {
						got = append(got, el)
					} else {
						still = append(still, id)
					}
				}
				pending = still
				step := time.Millisecond
				if el >= 200*time.Millisecond {
					step = 10 * time.Millisecond
				}
				clk.Advance(step)
			}
			slices.Sort(got)
			q := func(p float64) time.Duration { return got[int(p*float64(len(got)-1))] }
			p50, p99, last := q(0.50), q(0.99), got[len(got)-1]
			t.Logf("n=%d p50=%v p99=%v max=%v", len(got), p50, p99, last)
			if p50 < tt.p50[0] || p50 > tt.p50[1] {
				t.Errorf("p50 = %v, want within %v", p50, tt.p50)
			}
			if !tt.noP99 && (p99 < tt.p99[0] || p99 > tt.p99[1]) {
				t.Errorf("p99 = %v, want within %v", p99, tt.p99)
			}
			if last > tt.max {
				t.Errorf("slowest ack %v, want at most %v", last, tt.max)
			}
			if tt.overWant != [2]float64{} {
				n := 0
				if i := slices.IndexFunc(got, func(d time.Duration) bool { return d > tt.over }); i >= 0 {
					n = len(got) - i
				}
				if share := float64(n) / float64(len(got)); share < tt.overWant[0] || share > tt.overWant[1] {
					t.Errorf("share of acks after %v = %.3f, want within %v", tt.over, share, tt.overWant)
				}
			}
			if st := srv.Stats(); st.AckIDs < tt.n || st.AckQueries == 0 {
				t.Errorf("stats: %d ack polls, %d ids asked; want polls counted and >= %d ids", st.AckQueries, st.AckIDs, tt.n)
			}
		})
	}
}

// A restarted client (new connections, no cookie jar of its own) asking about an old channel
// gets that channel's true ack state, wherever the state still lives.
func TestChannelOutlivesClient(t *testing.T) {
	tests := []struct {
		name       string
		sticky     bool
		keepCookie bool   // the new client brings the old one's balancer cookie
		wantOld    string // the new client's first poll of ids 0, 1, 2 on the old channel
		wantNext   int64  // the ack id of its next send on the old channel
	}{
		{name: "one indexer", wantOld: "0:false 1:true 2:false", wantNext: 3},
		{name: "sticky balancer, cookie kept", sticky: true, keepCookie: true, wantOld: "0:false 1:true 2:false", wantNext: 3},
		// The balancer sends a client without the cookie to another indexer, which knows none
		// of the channel's ids, and starts the channel there at 0.
		{name: "sticky balancer, cookie lost", sticky: true, wantOld: "0:false 1:false 2:false", wantNext: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			srv := hectest.New(hectest.Options{Token: tToken, Ack: true, Sticky: tt.sticky, Now: clk.Now})
			defer srv.Close()
			a := newClient(t)
			srv.SetAckDelay(10 * time.Second)
			for want := range int64(2) {
				if id := send(t, a, srv, chanG, ""); id != want {
					t.Fatalf("first client: ack id %d, want %d", id, want)
				}
			}
			srv.SetAckDelay(time.Hour) // id 2 is not indexed yet when the client goes
			if id := send(t, a, srv, chanG, ""); id != 2 {
				t.Fatalf("first client: ack id %d, want 2", id)
			}
			clk.Advance(time.Minute)
			if got := poll(t, a, srv, chanG, "", 0); got != "0:true" {
				t.Fatalf("first client's poll = %q, want 0:true", got)
			}
			var cookie string
			if tt.keepCookie {
				for _, ck := range a.Jar.Cookies(mustURL(t, srv.URL)) {
					cookie = ck.Name + "=" + ck.Value
				}
				if cookie == "" {
					t.Fatal("the balancer set no cookie")
				}
			}
			a.Transport.(*http.Transport).CloseIdleConnections() // the first process is gone

			b := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second} // no jar
			defer b.Transport.(*http.Transport).CloseIdleConnections()
			if got := poll(t, b, srv, chanG, cookie, 0, 1, 2); got != tt.wantOld {
				t.Errorf("new client's poll of the old channel = %q, want %q", got, tt.wantOld)
			}
			if got := poll(t, b, srv, chanG, cookie, 1); got != "1:false" {
				t.Errorf("id 1 asked again = %q, want 1:false (read once, whoever read it)", got)
			}
			if got := poll(t, b, srv, chanH, cookie, 0); got != "0:false" {
				t.Errorf("new channel's id 0 before any send = %q, want 0:false", got)
			}
			if id := send(t, b, srv, chanH, cookie); id != 0 {
				t.Errorf("new channel's first ack id = %d, want 0", id)
			}
			if id := send(t, b, srv, chanG, cookie); id != tt.wantNext {
				t.Errorf("next ack id on the old channel = %d, want %d", id, tt.wantNext)
			}
		})
	}
}

// With ChannelIdle, a channel without requests for that long is dropped with its acks, as
// Splunk's ackIdleCleanup does; ack polls count as requests. ForgetChannels is a HEC restart.
func TestIdleChannelForgotten(t *testing.T) {
	tests := []struct {
		name          string
		idle          time.Duration
		restart       bool
		wantLast      string // poll of id 2 at the end
		wantNext      int64  // ack id of the next send on the channel
		wantForgotIDs int
		wantForgotChs int
	}{
		{name: "default: never forgotten", wantLast: "2:true", wantNext: 3},
		{name: "idle past ChannelIdle", idle: time.Minute, wantLast: "2:false", wantNext: 0, wantForgotIDs: 1, wantForgotChs: 2},
		{name: "HEC restart", restart: true, wantLast: "2:false", wantNext: 0, wantForgotIDs: 1, wantForgotChs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			srv := hectest.New(hectest.Options{Token: tToken, Ack: true, ChannelIdle: tt.idle, Now: clk.Now})
			defer srv.Close()
			c := newClient(t)
			for range 3 {
				send(t, c, srv, chanG, "")
			}
			send(t, c, srv, chanH, "") // another channel, kept busy below
			// Polls 50 s apart keep the channel alive, though 100 s pass after the last send.
			for _, id := range []int64{0, 1} {
				clk.Advance(50 * time.Second)
				if got, want := poll(t, c, srv, chanG, "", id), fmt.Sprintf("%d:true", id); got != want {
					t.Fatalf("poll after 50 s = %q, want %q (a polled channel is not idle)", got, want)
				}
				send(t, c, srv, chanH, "")
			}
			clk.Advance(61 * time.Second)
			if tt.restart {
				srv.ForgetChannels()
			}
			if got := poll(t, c, srv, chanG, "", 2); got != tt.wantLast {
				t.Errorf("poll of id 2 after 61 s idle = %q, want %q", got, tt.wantLast)
			}
			if id := send(t, c, srv, chanG, ""); id != tt.wantNext {
				t.Errorf("next ack id on the channel = %d, want %d", id, tt.wantNext)
			}
			if got, want := poll(t, c, srv, chanG, "", tt.wantNext), fmt.Sprintf("%d:true", tt.wantNext); got != want {
				t.Errorf("poll of the new send = %q, want %q", got, want)
			}
			// The busy channel H: 4 sends, the last 61 s ago (within the limit only without it).
			wantH := int64(3)
			if tt.idle > 0 || tt.restart {
				wantH = 0
			}
			if id := send(t, c, srv, chanH, ""); id != wantH {
				t.Errorf("next ack id on the other channel = %d, want %d", id, wantH)
			}
			st := srv.Stats()
			if st.ForgottenAckIDs != tt.wantForgotIDs {
				t.Errorf("ForgottenAckIDs = %d, want %d", st.ForgottenAckIDs, tt.wantForgotIDs)
			}
			if st.ForgottenChannels != tt.wantForgotChs {
				t.Errorf("ForgottenChannels = %d, want %d", st.ForgottenChannels, tt.wantForgotChs)
			}
			if st.AckQueries != 4 || st.AckIDs != 4 {
				t.Errorf("stats: %d ack polls, %d ids asked; want 4 and 4", st.AckQueries, st.AckIDs)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sendRaw posts a request body on the channel and returns the status and the ack id (-1: none).
func sendRaw(t *testing.T, c *http.Client, srv *hectest.Server, channel, body string) (int, int64) {
	t.Helper()
	status, out := post(t, c, srv.URL+"/services/collector/event", channel, "", body)
	id := int64(-1)
	if raw, ok := out["ackId"]; ok {
		if err := json.Unmarshal(raw, &id); err != nil {
			t.Fatalf("ackId %s: %v", raw, err)
		}
	}
	return status, id
}

// A HEC restart loses what was accepted on an ack channel and not yet acknowledged: the
// events of requests whose ack is due later, or never comes, and those a partial request
// indexed before its bad object. Events whose ack was ready (read or not) stay, and so does
// everything sent on a token without acks. Count, Keys, Events and the stats agree afterwards.
func TestRestartLosesThePipeline(t *testing.T) {
	tests := []struct {
		name       string
		ack        bool
		countOnly  bool
		wantEvents string // after the restart and one more send
		wantLost   int
	}{
		{name: "ack token", ack: true, wantEvents: "a b c g", wantLost: 6},
		{name: "ack token, counts only", ack: true, countOnly: true, wantEvents: "", wantLost: 6},
		{name: "token without ack", wantEvents: "a d1 d2 b a c f p1 h g", wantLost: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			srv := hectest.New(hectest.Options{Token: tToken, Ack: tt.ack, CountOnly: tt.countOnly, Now: clk.Now,
				Key: func(ev []byte) string { return strings.Trim(string(ev), `"`) }})
			defer srv.Close()
			c := newClient(t)
			ev := func(ch string, delay time.Duration, body string) int64 {
				t.Helper()
				srv.SetAckDelay(delay)
				status, id := sendRaw(t, c, srv, ch, body)
				if status != 200 {
					t.Fatalf("send %s: status %d", body, status)
				}
				return id
			}
			ev(chanG, 0, `{"event":"a"}`)                        // ready at once
			ev(chanG, time.Hour, `{"event":"d1"}{"event":"d2"}`) // due in an hour
			ev(chanG, 10*time.Second, `{"event":"b"}`)           // ready, never read
			ev(chanG, time.Hour, `{"event":"a"}`)                // a duplicate, due in an hour
			idC := ev(chanG, 10*time.Second, `{"event":"c"}`)    // ready and read
			srv.SetFailures(0, 0, 0, 1)
			ev(chanG, 0, `{"event":"f"}`) // its ack never comes
			srv.SetFailures(0, 0, 0, 0)
			srv.SetAckDelay(time.Hour)
			if status, _ := sendRaw(t, c, srv, chanG, `{"event":"p1"}{"event":""}`); status != 400 {
				t.Fatalf("partial request: status %d, want 400", status)
			}
			ev(chanH, time.Hour, `{"event":"h"}`) // another channel, due in an hour
			clk.Advance(20 * time.Second)
			if tt.ack {
				if got := poll(t, c, srv, chanG, "", idC); got != fmt.Sprintf("%d:true", idC) {
					t.Fatalf("poll of c = %q, want true", got)
				}
			}
			if st := srv.Stats(); st.Indexed != 9 || st.Distinct != 8 || st.Duplicates != 1 || srv.Count("a") != 2 {
				t.Fatalf("before the restart: indexed %d, distinct %d, duplicates %d, a twice (%d); want 9, 8, 1, 2",
					st.Indexed, st.Distinct, st.Duplicates, srv.Count("a"))
			}

			srv.ForgetChannels()
			ev(chanG, 0, `{"event":"g"}`) // HEC takes data again after the restart

			var got []string
			for _, e := range srv.Events() {
				got = append(got, strings.Trim(string(e.Raw), `"`))
			}
			if s := strings.Join(got, " "); s != tt.wantEvents {
				t.Errorf("events after the restart: %q, want %q", s, tt.wantEvents)
			}
			st := srv.Stats()
			if st.LostInRestart != tt.wantLost {
				t.Errorf("LostInRestart = %d, want %d", st.LostInRestart, tt.wantLost)
			}
			if st.Indexed != 10-tt.wantLost {
				t.Errorf("Indexed = %d, want %d", st.Indexed, 10-tt.wantLost)
			}
			// Counts agree with each other and with the events kept.
			keys := srv.Keys()
			sum := 0
			for k, n := range keys {
				sum += n
				if n <= 0 || srv.Count(k) != n {
					t.Errorf("key %q: Keys says %d, Count %d", k, n, srv.Count(k))
				}
			}
			if sum != st.Indexed || len(keys) != st.Distinct || st.Duplicates != st.Indexed-st.Distinct {
				t.Errorf("Keys sum to %d over %d keys; stats: indexed %d, distinct %d, duplicates %d", sum, len(keys), st.Indexed, st.Distinct, st.Duplicates)
			}
			if !tt.countOnly {
				want := map[string]int{}
				for _, k := range got {
					want[k]++
				}
				if fmt.Sprint(want) != fmt.Sprint(keys) {
					t.Errorf("Keys %v, want the events' %v", keys, want)
				}
			}
			wantA, wantD := 1, 0
			if !tt.ack {
				wantA, wantD = 2, 1
			}
			if srv.Count("a") != wantA || srv.Count("d1") != wantD || srv.Count("b") != 1 || srv.Count("c") != 1 || srv.Count("g") != 1 {
				t.Errorf("counts a %d, d1 %d, b %d, c %d, g %d; want %d, %d, 1, 1, 1", srv.Count("a"), srv.Count("d1"),
					srv.Count("b"), srv.Count("c"), srv.Count("g"), wantA, wantD)
			}
		})
	}
}

// Idle cleanup forgets a channel's ack state only: its data was indexed long before, and a
// later restart does not lose it.
func TestIdleCleanupKeepsData(t *testing.T) {
	clk := newClock()
	srv := hectest.New(hectest.Options{Token: tToken, Ack: true, ChannelIdle: time.Minute, Now: clk.Now})
	defer srv.Close()
	c := newClient(t)
	srv.SetAckDelay(time.Hour)
	sendRaw(t, c, srv, chanG, `{"event":"old"}`)
	clk.Advance(2 * time.Minute)
	sendRaw(t, c, srv, chanH, `{"event":"new"}`) // sweeps G away
	if st := srv.Stats(); st.ForgottenChannels != 1 {
		t.Fatalf("ForgottenChannels = %d, want 1 (G idle)", st.ForgottenChannels)
	}
	srv.ForgetChannels()
	st := srv.Stats()
	if srv.Count(`"old"`) != 1 || srv.Count(`"new"`) != 0 || st.LostInRestart != 1 || st.Indexed != 1 {
		t.Errorf("after idle cleanup then restart: old %d, new %d, lost %d, indexed %d; want 1, 0, 1, 1",
			srv.Count(`"old"`), srv.Count(`"new"`), st.LostInRestart, st.Indexed)
	}
}

// Many requests in flight, half of them acknowledged as others come in: the pipeline drops
// settled requests as it grows, never one still due, and a restart loses exactly the due ones.
func TestRestartAfterManyRequests(t *testing.T) {
	clk := newClock()
	srv := hectest.New(hectest.Options{Token: tToken, Ack: true, Now: clk.Now})
	defer srv.Close()
	c := newClient(t)
	var want []string
	for i := range 300 {
		delay := time.Second
		if i%2 == 1 {
			delay = time.Hour
		} else {
			want = append(want, fmt.Sprintf(`"e%d"`, i))
		}
		srv.SetAckDelay(delay)
		if status, _ := sendRaw(t, c, srv, chanG, fmt.Sprintf(`{"event":"e%d"}`, i)); status != 200 {
			t.Fatalf("send %d: status %d", i, status)
		}
		clk.Advance(2 * time.Second)
	}
	srv.ForgetChannels()
	var got []string
	for _, e := range srv.Events() {
		got = append(got, string(e.Raw))
	}
	if !slices.Equal(got, want) {
		t.Errorf("events after the restart: %d, want the %d acknowledged (%v...)", len(got), len(want), got[:min(len(got), 6)])
	}
	if st := srv.Stats(); st.LostInRestart != 150 || st.Indexed != 150 || st.Distinct != 150 {
		t.Errorf("lost %d, indexed %d, distinct %d; want 150 each", st.LostInRestart, st.Indexed, st.Distinct)
	}
}
