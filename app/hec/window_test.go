package hec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// watch stands between the client and the stand-in and records, per channel, how many event
// requests were on their way at once, and the most ack ids one poll asked about.
type watch struct {
	mu         sync.Mutex
	busy       map[string]int
	maxBusy    int
	maxAckIDs  int
	eventDelay time.Duration
}

func newWatch(t *testing.T, target string, delay time.Duration) (*watch, string) {
	t.Helper()
	u, _ := url.Parse(target)
	w := &watch{busy: map[string]int{}, eventDelay: delay}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ch := r.Header.Get("X-Splunk-Request-Channel")
		if r.URL.Path == "/services/collector/ack" {
			body, _ := io.ReadAll(r.Body)
			var q struct{ Acks []int64 }
			_ = json.Unmarshal(body, &q)
			w.mu.Lock()
			w.maxAckIDs = max(w.maxAckIDs, len(q.Acks))
			w.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			proxy.ServeHTTP(rw, r)
			return
		}
		w.mu.Lock()
		w.busy[ch]++
		w.maxBusy = max(w.maxBusy, w.busy[ch])
		w.mu.Unlock()
		time.Sleep(w.eventDelay)
		proxy.ServeHTTP(rw, r)
		w.mu.Lock()
		w.busy[ch]--
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

// With acks, requests go one at a time per channel while several batches wait for their
// acks at once; without acks, requests go in parallel.
func TestWindowSendsOneAtATimePerChannel(t *testing.T) {
	for _, acks := range []bool{true, false} {
		name := map[bool]string{true: "acks", false: "no acks"}[acks]
		t.Run(name, func(t *testing.T) {
			srv := newHEC(t, hectest.Options{Ack: acks})
			srv.SetAckDelay(150 * time.Millisecond)
			w, front := newWatch(t, srv.URL, 20*time.Millisecond)
			c := newClient(t, func(c *hec.Config) {
				c.BatchCount = 5
				c.MaxInFlight = 8
				c.Window = hec.WindowFixed
				c.AckTimeout = 10 * time.Second
			}, front)
			res := send(t, c, 200, 300)
			if _, resent, errs := res.sum(); len(errs) > 0 || resent != 0 || c.Stats().ChannelResets != 0 {
				t.Fatalf("errors %v, %d re-sent, %d channel resets: want none (ack ids are checked in the order HEC gave them)", errs, resent, c.Stats().ChannelResets)
			}
			if st := srv.Stats(); st.Distinct != 200 {
				t.Fatalf("%d of 200 indexed", st.Distinct)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if acks {
				if w.maxBusy != 1 {
					t.Errorf("%d event requests on one channel at once, want 1 with acks", w.maxBusy)
				}
				if w.maxAckIDs < 2 {
					t.Errorf("at most %d batch awaited its ack at a time, want several (the window)", w.maxAckIDs)
				}
			} else if w.maxBusy < 2 {
				t.Errorf("without acks, at most %d request at a time, want requests in parallel", w.maxBusy)
			}
		})
	}
}

// A lost ack costs one batch, not the pipeline: once later batches are acknowledged and it
// has waited AckOverdueMin (and 3 × the recent p95), the batch is sent again, long before the
// ack timeout.
func TestOverdueAckIsResent(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true, Seed: 7})
	srv.SetAckDelay(20 * time.Millisecond)
	srv.SetFailures(0, 0, 0, 0.15)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 8
		c.AckTimeout = time.Minute // the test's deadline comes first if overdue acks wait for it
		c.AckOverdueMin = 300 * time.Millisecond
	}, srv.URL)
	res := send(t, c, 300, 200)
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	st := c.Stats()
	if st.AckTimeouts != 0 || st.AckOverdue == 0 {
		t.Errorf("ack timeouts %d, overdue re-sends %d: want 0 and some (the stand-in lost %d acks)", st.AckTimeouts, st.AckOverdue, srv.Stats().AcksLost)
	}
	if got := srv.Stats().Distinct; got != 300 {
		t.Errorf("%d of 300 indexed", got)
	}
	_, resent, _ := res.sum()
	if resent < st.AckOverdue*5 {
		t.Errorf("%d records counted as re-sent for %d overdue batches of 5", resent, st.AckOverdue)
	}
}

// sendTickets sends n batches of 5 records through a new client on url, collects their
// tickets, and stops the client before the acks come (a crash).
func sendTickets(t testing.TB, srv *hectest.Server, n int) []hec.Ticket {
	t.Helper()
	before := srv.Stats().Requests
	c, err := hec.New(hec.Config{URLs: []string{srv.URL}, Token: token, AckTimeout: 10 * time.Second, AckInterval: 10 * time.Millisecond,
		BatchCount: 5, MaxInFlight: 16, Window: hec.WindowFixed})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var tickets []hec.Ticket
	got := make(chan struct{})
	s := c.NewBatchSender(time.Hour, func(hec.Outcome) {})
	s.OnTicket(func(_ *hec.Batch, tk hec.Ticket) {
		mu.Lock()
		tickets = append(tickets, tk)
		if len(tickets) == n {
			close(got)
		}
		mu.Unlock()
	})
	for i := 0; i < 5*n; i++ {
		if err := s.Add(ctx, alert(i, 200), nil); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Flush(ctx)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no tickets")
	}
	mu.Lock()
	tickets = tickets[:n:n]
	mu.Unlock()
	// The last ticket was told before its request went (its ack id predicted): the "crash"
	// comes once HEC has that request (not later: the client would read acks meanwhile).
	for srv.Stats().Requests < before+n {
		time.Sleep(time.Millisecond)
	}
	stop()
	c.Close()
	time.Sleep(100 * time.Millisecond)
	return tickets
}

// After a restart, the acks of the batches an earlier process sent are asked for on its
// channel (never sent on); a channel HEC forgot proves nothing; this client's own channels
// are never asked about; behind a sticky balancer, the ticket's cookie finds the indexer.
func TestRecoverAsksTheOldChannel(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(300 * time.Millisecond)
	tickets := sendTickets(t, srv, 4)
	indexed := srv.Stats().Indexed
	b := newClient(t, func(c *hec.Config) { c.AckTimeout = 2 * time.Second }, srv.URL)
	ok, err := b.Recover(context.Background(), tickets)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ok {
		if !v {
			t.Errorf("ticket %d (ack %d) not confirmed", i, tickets[i].AckID)
		}
	}
	if st := srv.Stats(); st.Indexed != indexed {
		t.Errorf("recovery indexed %d events: it must only ask", st.Indexed-indexed)
	}

	// HEC restarted: the old channel is gone, and nothing is proven.
	tickets = sendTickets(t, srv, 3)
	srv.ForgetChannels()
	b2 := newClient(t, func(c *hec.Config) { c.AckTimeout = 300 * time.Millisecond }, srv.URL)
	start := time.Now()
	ok, err = b2.Recover(context.Background(), tickets)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ok {
		if v {
			t.Errorf("ticket %d confirmed on a channel HEC forgot", i)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("recovery took %v, want about the ack timeout", d)
	}
	if srv.Stats().ForgottenAckIDs == 0 {
		t.Error("the forgotten channel was never asked about")
	}

	// A ticket on this client's own channel is never asked about.
	own := newClient(t, func(c *hec.Config) { c.BatchCount = 5 }, srv.URL)
	var mine []hec.Ticket
	var mu sync.Mutex
	s := own.NewBatchSender(time.Hour, func(hec.Outcome) {})
	s.OnTicket(func(_ *hec.Batch, tk hec.Ticket) { mu.Lock(); mine = append(mine, tk); mu.Unlock() })
	for i := 0; i < 5; i++ {
		_ = s.Add(context.Background(), alert(1000+i, 100), nil)
	}
	_ = s.Flush(context.Background())
	own.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(mine) != 1 {
		t.Fatalf("%d tickets, want 1", len(mine))
	}
	polls := own.Stats().AckPolls
	if ok, _ := own.Recover(context.Background(), mine); ok[0] || own.Stats().AckPolls != polls {
		t.Error("a ticket on the client's own live channel was asked about or confirmed")
	}
}

func TestRecoverBringsTheBalancerCookie(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true, Sticky: true})
	srv.SetAckDelay(200 * time.Millisecond)
	tickets := sendTickets(t, srv, 2)
	for _, tk := range tickets {
		if len(tk.Cookies) == 0 {
			t.Fatal("a ticket behind a sticky balancer carries no cookie")
		}
	}
	bare := append([]hec.Ticket(nil), tickets...)
	for i := range bare {
		bare[i].Cookies = nil
	}
	b := newClient(t, func(c *hec.Config) { c.AckTimeout = 400 * time.Millisecond }, srv.URL)
	if ok, _ := b.Recover(context.Background(), bare); ok[0] || ok[1] {
		t.Fatal("confirmed without the balancer's cookie: the stand-in is too lenient")
	}
	ok, err := b.Recover(context.Background(), tickets)
	if err != nil || !ok[0] || !ok[1] {
		t.Fatalf("with the cookie: %v, %v", ok, err)
	}
}

// Batches are held compressed while they wait for acks, within the byte cap.
func TestBatchesHeldCompressedUnderTheCap(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(100 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchBytes = 256 << 10
		c.MaxInFlight = 64
		c.Window = hec.WindowFixed
		c.MaxBytesInFlight = 1 << 20
		c.AckTimeout = 10 * time.Second
	}, srv.URL)
	res := send(t, c, 3000, 2000) // about 6 MB raw
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	st := c.Stats()
	if st.BytesInFlightMax > 1<<20 {
		t.Errorf("%d bytes held at once, over the cap of 1 MiB", st.BytesInFlightMax)
	}
	if st.BytesInFlightMax >= int64(st.BytesRaw) {
		t.Errorf("held %d bytes at most for %d raw: batches are not held compressed", st.BytesInFlightMax, st.BytesRaw)
	}
	if srv.Stats().Distinct != 3000 {
		t.Errorf("%d of 3000 indexed", srv.Stats().Distinct)
	}
}

// An ack the earlier process read just before it stopped answers false for ever (ack ids are
// read once): once a later id of its channel is acknowledged and it is older than
// AckOverdueMin, recovery gives it up instead of waiting out the whole ack timeout.
func TestRecoverGivesUpAConsumedAck(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(100 * time.Millisecond)
	tickets := sendTickets(t, srv, 3)
	time.Sleep(150 * time.Millisecond)
	// The earlier process read the first batch's ack, and stopped before it saved that.
	req, _ := httpRequest(srv.URL+"/services/collector/ack", fmt.Sprintf(`{"acks":[%d]}`, tickets[0].AckID))
	req.Header.Set("Authorization", "Splunk "+token)
	req.Header.Set("X-Splunk-Request-Channel", tickets[0].Channel)
	if code, err := httpDo(req); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	b := newClient(t, func(c *hec.Config) { c.AckTimeout = time.Minute; c.AckOverdueMin = 300 * time.Millisecond }, srv.URL)
	start := time.Now()
	ok, err := b.Recover(context.Background(), tickets)
	if err != nil {
		t.Fatal(err)
	}
	if ok[0] || !ok[1] || !ok[2] {
		t.Errorf("answers %v, want [false true true]", ok)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("recovery waited %v for an ack that was read before: want about AckOverdueMin, not the ack timeout", d)
	}
}

// HEC forgets the channel while batches wait for their acks (a restart): the next send's ack
// id starts again at 0, which the client takes as the sign. The waiting batches' tickets are
// declared void before anything else (a crash then never takes an old ticket for proof), and
// they are sent again on a new channel; nothing waiting is confirmed by a new batch's ack that
// happens to carry its old id.
func TestChannelForgottenWhileBatchesWait(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(400 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 8
		c.Window = hec.WindowFixed
		c.AckTimeout = 20 * time.Second
	}, srv.URL)
	res := &result{}
	s := c.NewBatchSender(time.Hour, res.done)
	var mu sync.Mutex
	var told []hec.Ticket
	s.OnTicket(func(_ *hec.Batch, tk hec.Ticket) {
		time.Sleep(30 * time.Millisecond) // the checkpoint's save
		mu.Lock()
		told = append(told, tk)
		mu.Unlock()
	})
	ctx := context.Background()
	for i := 0; i < 15; i++ { // three batches, waiting for their acks
		_ = s.Add(ctx, alert(i, 100), i)
	}
	_ = s.Flush(ctx)
	time.Sleep(150 * time.Millisecond)
	srv.ForgetChannels()
	for i := 15; i < 40; i++ {
		_ = s.Add(ctx, alert(i, 100), i)
	}
	_ = s.Flush(ctx)
	c.Wait()
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	st := c.Stats()
	if st.ChannelResets != 1 {
		t.Errorf("%d channel resets seen, want 1", st.ChannelResets)
	}
	if got := srv.Stats().Distinct; got != 40 {
		t.Errorf("%d of 40 alerts indexed: a batch was taken as confirmed by another's ack", got)
	}
	mu.Lock()
	defer mu.Unlock()
	voids, channels := 0, map[string]bool{}
	for _, tk := range told {
		if tk.Void {
			voids++
		} else {
			channels[tk.Channel] = true
		}
	}
	if voids < 3 || len(channels) != 2 {
		t.Errorf("%d void tickets over %d channels: want the 3 waiting batches (and the one that saw the reset) voided, and a new channel", voids, len(channels))
	}
}

// HEC forgot the channel, and a request sent on it afterwards (by the earlier process, just
// before it died) took ack id 0 again: the old batch's ticket with id 0 must not be taken for
// proof. Id 0 counts only when HEC also acknowledges another id of the channel.
func TestRecoverDoesNotTrustARevivedZero(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(time.Hour) // the old batch's ack never came before the restart
	tickets := sendTickets(t, srv, 1)
	if tickets[0].AckID != 0 {
		t.Fatalf("first ticket has ack id %d", tickets[0].AckID)
	}
	srv.ForgetChannels()
	srv.SetAckDelay(0)
	req, _ := httpRequest(srv.URL+"/services/collector/event", `{"event":{"id":"other"}}`)
	req.Header.Set("Authorization", "Splunk "+token)
	req.Header.Set("X-Splunk-Request-Channel", tickets[0].Channel)
	if code, err := httpDo(req); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	b := newClient(t, func(c *hec.Config) { c.AckTimeout = 300 * time.Millisecond; c.AckOverdueMin = 100 * time.Millisecond }, srv.URL)
	ok, err := b.Recover(context.Background(), tickets)
	if err != nil {
		t.Fatal(err)
	}
	if ok[0] {
		t.Error("ack id 0 of a revived channel was taken for the old batch's proof")
	}
}

// A channel that is never idle (batches queue for it) still has its acks asked about, the
// first request's (id 0) included: ack polls go between requests (a request on its way on a
// channel HEC forgot takes id 0 again), and must not wait out the queue of senders.
func TestAckIDZeroAskedOnBusyChannel(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(5 * time.Millisecond)
	_, front := newWatch(t, srv.URL, 30*time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 8
		c.Window = hec.WindowFixed
		c.AckTimeout = 500 * time.Millisecond
		c.AckOverdueMin = time.Minute
	}, front)
	res := send(t, c, 200, 300) // 40 requests of 30 ms each: the channel is busy for 1.2 s
	_, resent, errs := res.sum()
	st := c.Stats()
	if len(errs) > 0 || resent != 0 || st.AckTimeouts != 0 {
		t.Fatalf("errors %v, %d re-sent, %d ack timeouts: want none (id 0 is asked about while the channel is busy)", errs, resent, st.AckTimeouts)
	}
	if hs := srv.Stats(); hs.Distinct != 200 || hs.Duplicates != 0 {
		t.Fatalf("%d of 200 indexed, %d duplicates", hs.Distinct, hs.Duplicates)
	}
}

// The earlier process read the acks of its later batches (ids 1 and 2) but not yet that of
// its first (id 0), and a crash cut its next request short. Recovery asks about the id after
// the tickets' highest (the cut-short request's): its true proves HEC kept the channel, so
// id 0's true is the first batch's own and it is not sent again.
func TestRecoverTrustsZeroWhenTheChannelGoesOn(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(100 * time.Millisecond)
	tickets := sendTickets(t, srv, 3)
	time.Sleep(150 * time.Millisecond)
	ch := tickets[0].Channel
	ask := func(path, body string) {
		t.Helper()
		req, _ := httpRequest(srv.URL+path, body)
		req.Header.Set("Authorization", "Splunk "+token)
		req.Header.Set("X-Splunk-Request-Channel", ch)
		if code, err := httpDo(req); err != nil || code != 200 {
			t.Fatal(code, err)
		}
	}
	ask("/services/collector/ack", fmt.Sprintf(`{"acks":[%d,%d]}`, tickets[1].AckID, tickets[2].AckID))
	ask("/services/collector/event", `{"event":{"id":"cut-short"}}`)
	b := newClient(t, func(c *hec.Config) { c.AckTimeout = time.Minute; c.AckOverdueMin = 300 * time.Millisecond }, srv.URL)
	ok, err := b.Recover(context.Background(), tickets)
	if err != nil {
		t.Fatal(err)
	}
	if !ok[0] || ok[1] || ok[2] {
		t.Errorf("answers %v, want [true false false]: id 0 is proven by the cut-short request's id", ok)
	}
}

// The newest batch has no later one to be acknowledged after it: its ack is overdue once the
// channel has acknowledged others since it was sent (the end of a drain), not only after the
// ack timeout.
func TestOverdueAckOfTheLastBatch(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(200 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 8
		c.Window = hec.WindowFixed
		c.AckTimeout = 30 * time.Second
		c.AckOverdueMin = 300 * time.Millisecond
	}, srv.URL)
	res := &result{}
	bt := c.NewBatcher()
	for i := 0; i < 20; i++ {
		if b := bt.Add(alert(i, 100)); b != nil {
			_ = c.Submit(context.Background(), b, res.done)
		}
	}
	// Wait on what HEC decided, not on the requests it counted (it counts one first): the
	// first three batches' acks are on their way before the failure is set, and the last
	// one's is lost before it is cleared.
	for srv.Stats().AckIDsGiven < 3 {
		time.Sleep(time.Millisecond)
	}
	srv.SetFailures(0, 0, 0, 1) // the last batch's ack will never come
	_ = c.Submit(context.Background(), bt.Flush(), res.done)
	for srv.Stats().AckIDsGiven < 4 {
		time.Sleep(time.Millisecond)
	}
	srv.SetFailures(0, 0, 0, 0)
	start := time.Now()
	c.Wait()
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	st := c.Stats()
	if st.AckOverdue != 1 || st.AckTimeouts != 0 || time.Since(start) > 10*time.Second {
		t.Errorf("overdue %d, timeouts %d after %v: want the last batch re-sent as overdue, well before the ack timeout", st.AckOverdue, st.AckTimeouts, time.Since(start))
	}
	if srv.Stats().Distinct != 20 {
		t.Errorf("%d of 20 indexed", srv.Stats().Distinct)
	}
}

// HEC restarts (losing the first batch, whose ack had not come) and the reply to the next
// request is lost after HEC took it on the forgotten channel, with ack id 0 again. The first
// batch's id 0 must not be answered true for the lost request: the first batch is sent again.
func TestLostReplyOnAForgottenChannelIsSeen(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(time.Hour)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 8
		c.Window = hec.WindowFixed
		c.AckTimeout = 30 * time.Second
		c.AckOverdueMin = time.Minute
	}, srv.URL)
	res := &result{}
	bt := c.NewBatcher()
	submit := func(from int) {
		for i := from; i < from+5; i++ {
			if b := bt.Add(alert(i, 100)); b != nil {
				_ = c.Submit(context.Background(), b, res.done)
			}
		}
		if b := bt.Flush(); b != nil {
			_ = c.Submit(context.Background(), b, res.done)
		}
	}
	waitFor := func(what string, ok func(hectest.Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(srv.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s: %+v", what, srv.Stats())
			}
		}
	}
	submit(0)
	waitFor("first batch indexed", func(s hectest.Stats) bool { return s.Indexed >= 5 })
	srv.ForgetChannels()
	srv.SetAckDelay(0)
	srv.SetFailures(0, 0, 1, 0)
	submit(5)
	waitFor("lost reply", func(s hectest.Stats) bool { return s.LostReply >= 1 })
	srv.SetFailures(0, 0, 0, 0)
	c.Wait()
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if st := srv.Stats(); st.Distinct != 10 {
		t.Errorf("%d of 10 alerts indexed (%d lost in HEC's restart): the first batch was taken as acknowledged by the lost request's id 0", st.Distinct, st.LostInRestart)
	}
}

// As TestLostReplyOnAForgottenChannelIsSeen, with the lost request's retry slower than an ack
// poll: the poller must not ask the revived channel about the first batch's id 0 meanwhile
// (the channel is given up at the lost reply).
func TestNoPollAfterALostReply(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(time.Hour)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 8
		c.Window = hec.WindowFixed
		c.AckTimeout = 30 * time.Second
		c.AckOverdueMin = time.Minute
		c.BackoffInitial, c.BackoffMax, c.SetAside = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	}, srv.URL)
	res := &result{}
	bt := c.NewBatcher()
	submit := func(from int) {
		for i := from; i < from+5; i++ {
			if b := bt.Add(alert(i, 100)); b != nil {
				_ = c.Submit(context.Background(), b, res.done)
			}
		}
		if b := bt.Flush(); b != nil {
			_ = c.Submit(context.Background(), b, res.done)
		}
	}
	wait := func(ok func(hectest.Stats) bool) {
		for d := time.Now().Add(10 * time.Second); !ok(srv.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(d) {
				t.Fatalf("timeout %+v", srv.Stats())
			}
		}
	}
	submit(0)
	wait(func(s hectest.Stats) bool { return s.Indexed >= 5 })
	srv.ForgetChannels()
	srv.SetAckDelay(0)
	srv.SetFailures(0, 0, 1, 0)
	submit(5)
	wait(func(s hectest.Stats) bool { return s.LostReply >= 1 })
	srv.SetFailures(0, 0, 0, 0)
	c.Wait()
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if st := srv.Stats(); st.Distinct != 10 {
		t.Errorf("%d of 10 alerts indexed: the first batch was taken as acknowledged by the lost request's id 0", st.Distinct)
	}
}

// Acks that slow down from 10 ms to 400 ms while one batch is alone in flight: the batch is
// re-sent as overdue (nothing after it to tell a slow ack from a lost one; after 100 ms, then
// 200 ms more), and its first send's ack, which then comes late, confirms it. The second send's ack never comes here, so
// only the first one's can end the wait before the ack timeout. (Sending a batch again while
// forgetting its first ack id had it sent 4 times and then failed.)
func TestSlowAckOfALoneBatchStillConfirmsIt(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(10 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 1
		c.Window = hec.WindowFixed
		c.AckTimeout = 20 * time.Second
		c.AckOverdueMin = 100 * time.Millisecond
	}, srv.URL)
	res := send(t, c, 10, 100)
	c.Wait()
	srv.SetAckDelay(400 * time.Millisecond)
	before := srv.Stats().AckIDsGiven
	res2 := &result{}
	bt := c.NewBatcher()
	for i := 100; i < 105; i++ {
		_ = bt.Add(alert(i, 100))
	}
	start := time.Now()
	_ = c.Submit(context.Background(), bt.Flush(), res2.done)
	for srv.Stats().AckIDsGiven == before { // this send's ack is decided (slow, not lost)
		time.Sleep(time.Millisecond)
	}
	srv.SetFailures(0, 0, 0, 1) // later sends' acks never come
	c.Wait()
	took := time.Since(start)
	if _, _, e1 := res.sum(); len(e1) > 0 {
		t.Fatal(e1)
	}
	_, _, errs := res2.sum()
	st := c.Stats()
	if len(errs) > 0 || st.AckTimeouts > 0 || st.AckOverdue == 0 || st.AckOverdue > 2 || took > 10*time.Second {
		t.Errorf("after %v: errors %v, %d ack timeouts, %d overdue re-sends: want the first send's late ack to confirm the batch after one or two re-sends", took, errs, st.AckTimeouts, st.AckOverdue)
	}
	if hs := srv.Stats(); hs.Distinct != 15 || hs.Duplicates != 5*st.AckOverdue {
		t.Errorf("%d of 15 indexed, %d duplicates (want 5 per re-send, %d re-sends)", hs.Distinct, hs.Duplicates, st.AckOverdue)
	}
}

// A batch alone in flight whose ack is lost is sent again once it is overdue, not after the
// whole ack timeout: nothing comes after it to compare with (the end of a drain, a collector
// caught up).
func TestLostAckOfALoneBatch(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(20 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.AckTimeout = 30 * time.Second
		c.AckOverdueMin = 200 * time.Millisecond
	}, srv.URL)
	res := send(t, c, 10, 100)
	c.Wait()
	before := srv.Stats().Requests
	srv.SetFailures(0, 0, 0, 1)
	res2 := &result{}
	bt := c.NewBatcher()
	for i := 100; i < 105; i++ {
		_ = bt.Add(alert(i, 100))
	}
	start := time.Now()
	_ = c.Submit(context.Background(), bt.Flush(), res2.done)
	// Until HEC decided to lose this request's ack (counting the request comes first: clearing
	// the failure on that alone let a loaded machine answer the ack after all).
	for deadline := time.Now().Add(10 * time.Second); srv.Stats().AcksLost == 0; {
		if srv.Stats().Requests > before+1 || time.Now().After(deadline) {
			t.Fatalf("the batch's ack was not lost: %+v", srv.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	srv.SetFailures(0, 0, 0, 0)
	c.Wait()
	took := time.Since(start)
	_, _, errs := res2.sum()
	if _, _, e1 := res.sum(); len(e1)+len(errs) > 0 {
		t.Fatal(e1, errs)
	}
	if st := c.Stats(); st.AckOverdue != 1 || st.AckTimeouts != 0 || took > 10*time.Second {
		t.Errorf("after %v: %d overdue re-sends, %d ack timeouts: want the lone batch re-sent once as overdue, well before the ack timeout", took, st.AckOverdue, st.AckTimeouts)
	}
	if hs := srv.Stats(); hs.Distinct != 15 || hs.AcksLost != 1 {
		t.Errorf("%d of 15 indexed, %d acks lost", hs.Distinct, hs.AcksLost)
	}
}

// HEC comes back after being down, with a window of 32 batches retrying on one channel whose
// requests take 50 ms each: acks are still read within the 1 s ack timeout, so nothing is sent
// twice. (It passes with or without senders queueing one at a time for the channel: the
// scenario that starved the poller in the daemon test is not reproduced here.)
func TestAcksKeepComingWhenHECComesBack(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(10 * time.Millisecond)
	_, front := newWatch(t, srv.URL, 50*time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.MaxInFlight = 32
		c.Window = hec.WindowFixed
		c.AckTimeout = time.Second
		c.AckOverdueMin = time.Minute
		c.BackoffInitial, c.BackoffMax, c.SetAside = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	}, front)
	srv.SetDown(true)
	go func() { time.Sleep(300 * time.Millisecond); srv.SetDown(false) }()
	res := send(t, c, 320, 300)
	_, resent, errs := res.sum()
	if st := c.Stats(); len(errs) > 0 || st.AckTimeouts != 0 {
		t.Fatalf("errors %v, %d re-sent, %d ack timeouts: ack polls waited behind the queue of senders", errs, resent, st.AckTimeouts)
	}
	if hs := srv.Stats(); hs.Distinct != 320 || hs.Duplicates != 0 {
		t.Fatalf("%d of 320 indexed, %d duplicates", hs.Distinct, hs.Duplicates)
	}
}

// Dropped connections (nothing indexed, no ack lost) with 32 batches waiting for acks: each
// drop retires the channel, and the batches waiting on it are still asked about there; only
// the one with ack id 0 is sent again. Giving the whole channel up at each drop re-sent the
// window, and the re-sends met more drops (3,160 duplicates of 2,000 alerts at 5% drops).
func TestDroppedConnectionsDoNotResendTheWindow(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true, Seed: 3})
	srv.SetAckDelay(300 * time.Millisecond)
	srv.SetFailures(0, 0.05, 0, 0)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 10
		c.MaxInFlight = 32
		c.Window = hec.WindowFixed
		c.AckTimeout = 5 * time.Second
		c.AckOverdueMin = 2 * time.Second
		c.GiveUpAfter = time.Minute
	}, srv.URL)
	res := send(t, c, 2000, 200)
	if _, _, errs := res.sum(); len(errs) > 0 {
		t.Fatal(errs)
	}
	hs := srv.Stats()
	if hs.Distinct != 2000 {
		t.Fatalf("%d of 2000 indexed", hs.Distinct)
	}
	// At most the batch with ack id 0 of each retired channel comes twice.
	if hs.Dropped == 0 || hs.Duplicates > 10*hs.Dropped {
		t.Errorf("%d duplicates for %d dropped connections: want at most one batch (10) per drop", hs.Duplicates, hs.Dropped)
	}
}

// RecoverEach tells, round by round, the tickets each round proved, and never id 0 before
// another id of its channel is acknowledged (id 0 alone proves nothing).
func TestRecoverEachTellsWhatEachRoundProved(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(200 * time.Millisecond)
	tickets := sendTickets(t, srv, 3)
	b := newClient(t, func(c *hec.Config) { c.AckTimeout = 5 * time.Second; c.AckInterval = 20 * time.Millisecond }, srv.URL)
	var rounds [][]int
	ok, err := b.RecoverEach(context.Background(), tickets, func(proved []int) {
		rounds = append(rounds, append([]int(nil), proved...))
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, r := range rounds {
		zero := false
		for _, i := range r {
			if seen[i] {
				t.Errorf("ticket %d told twice", i)
			}
			seen[i] = true
			zero = zero || tickets[i].AckID == 0
		}
		other := false
		for j := range seen {
			other = other || tickets[j].AckID != 0
		}
		if zero && !other {
			t.Errorf("ack id 0 told as proved before any other id of its channel (rounds %v)", rounds)
		}
	}
	for i, v := range ok {
		if v != seen[i] || !v {
			t.Errorf("ticket %d: answered %v, told %v; want both true", i, v, seen[i])
		}
	}
}
