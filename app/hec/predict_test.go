package hec_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// ticketLog records what a sender told through OnTicket, with the event requests HEC had
// seen at that moment.
type ticketLog struct {
	mu   sync.Mutex
	srv  *hectest.Server
	told []toldTicket
}

type toldTicket struct {
	hec.Ticket
	requests int
}

func (l *ticketLog) add(_ *hec.Batch, tk hec.Ticket) {
	n := l.srv.Stats().Requests
	l.mu.Lock()
	l.told = append(l.told, toldTicket{tk, n})
	l.mu.Unlock()
}

func (l *ticketLog) all() []toldTicket {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]toldTicket(nil), l.told...)
}

// A collector killed while HEC holds its request and the reply has not come: the ticket was
// told before the request went (with the ack id HEC gives it), so the next process proves
// the batch instead of sending it again.
func TestTicketOfARequestCutShortByACrash(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	u, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var slow atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !slow.Load() || r.URL.Path == "/services/collector/ack" {
			proxy.ServeHTTP(rw, r)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)            // HEC takes it …
		time.Sleep(500 * time.Millisecond) // … and the reply is slow: the collector dies meanwhile
		rw.WriteHeader(rec.Code)
		_, _ = rw.Write(rec.Body.Bytes())
	}))
	t.Cleanup(front.Close)
	c, err := hec.New(hec.Config{URLs: []string{front.URL}, Token: token, Ack: hec.AckOn, AckTimeout: 10 * time.Second,
		AckInterval: 10 * time.Millisecond, BatchCount: 5, MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	log := &ticketLog{srv: srv}
	ctx, kill := context.WithCancel(context.Background())
	s := c.NewBatchSender(time.Hour, func(hec.Outcome) {})
	s.OnTicket(log.add)
	for i := 0; i < 5; i++ {
		_ = s.Add(ctx, alert(i, 100), nil)
	}
	_ = s.Flush(ctx)
	c.Wait() // the first batch is acknowledged: the channel has ack id 0
	slow.Store(true)
	for i := 5; i < 10; i++ {
		_ = s.Add(ctx, alert(i, 100), nil)
	}
	_ = s.Flush(ctx)
	for srv.Stats().Requests < 2 {
		time.Sleep(time.Millisecond)
	}
	kill() // HEC has the second batch; its reply is still on its way
	c.Close()
	told := log.all()
	if len(told) != 2 || told[1].AckID != 1 || told[1].Void {
		t.Fatalf("tickets told: %+v; want the second batch's, ack id 1, told before HEC answered", told)
	}
	b := newClient(t, nil, front.URL)
	ok, err := b.Recover(context.Background(), []hec.Ticket{told[0].Ticket, told[1].Ticket})
	if err != nil {
		t.Fatal(err)
	}
	if !ok[1] {
		t.Errorf("the batch whose request the crash cut short was not proven: %v", ok)
	}
	if hs := srv.Stats(); hs.Distinct != 10 || hs.Duplicates != 0 {
		t.Errorf("%d of 10 indexed, %d duplicates", hs.Distinct, hs.Duplicates)
	}
}

// A request HEC answers busy gets no ack id, so a next request on the channel would get the
// one its predicted ticket named: the ticket is declared void, and the channel left, so that
// even a void that never reached the disk cannot let another request's ack prove this batch.
// The first request on the new channel is told after its reply (ack id 0 there).
func TestBusyReplyVoidsThePredictedTicket(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(10 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.Ack = hec.AckOn
	}, srv.URL)
	log := &ticketLog{srv: srv}
	s := c.NewBatchSender(time.Hour, func(hec.Outcome) {})
	s.OnTicket(log.add)
	for i := 0; i < 5; i++ {
		_ = s.Add(context.Background(), alert(i, 100), nil)
	}
	_ = s.Flush(context.Background())
	c.Wait()
	srv.SetFailures(1, 0, 0, 0) // every request busy …
	for i := 5; i < 10; i++ {
		_ = s.Add(context.Background(), alert(i, 100), nil)
	}
	_ = s.Flush(context.Background())
	for srv.Stats().ByStatus[503] == 0 {
		time.Sleep(time.Millisecond)
	}
	srv.SetFailures(0, 0, 0, 0) // … once
	c.Wait()
	told := log.all()
	// the first batch's ticket (ack id 0, told after its reply), then the second's: predicted
	// 1, void after the busy reply, then id 0 on a new channel, told after its reply
	if len(told) != 4 || told[1].AckID != 1 || told[1].Void || !told[2].Void || told[3].Void ||
		told[3].AckID != 0 || told[3].Channel == told[1].Channel {
		t.Fatalf("tickets told: %+v; want 0, predicted 1, void, then 0 on another channel", told)
	}
	if told[0].requests != 1 || told[1].requests != 1 || told[2].requests != 2 || told[3].requests != 3 {
		t.Errorf("tickets told after %d, %d, %d, %d requests: want 1 (after the first reply), 1 (before the second request), 2 (right after the busy one), 3",
			told[0].requests, told[1].requests, told[2].requests, told[3].requests)
	}
	if hs := srv.Stats(); hs.Distinct != 10 || hs.Duplicates != 0 {
		t.Errorf("%d of 10 indexed, %d duplicates", hs.Distinct, hs.Duplicates)
	}
}

// A balancer answers 504 after HEC took the request (and gave it the predicted ack id): the
// reply is not HEC's, so the request may have been indexed. The channel is retired (nothing
// is sent on it again, so no other request can get that id) and the predicted ticket stays: it
// proves the batch after a crash, as it should. The next batch goes on a new channel.
func TestGatewayTimeoutAfterHECTookTheRequest(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	u, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var cut atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/collector/ack" || cut.Load() == 0 {
			proxy.ServeHTTP(rw, r)
			return
		}
		cut.Add(-1)
		proxy.ServeHTTP(httptest.NewRecorder(), r) // HEC indexes it …
		rw.Header().Set("Content-Type", "text/html")
		rw.WriteHeader(http.StatusGatewayTimeout) // … the balancer gave up waiting
		_, _ = rw.Write([]byte("<html><body>504 Gateway Time-out</body></html>"))
	}))
	t.Cleanup(front.Close)
	c := newClient(t, func(c *hec.Config) {
		c.BatchCount = 5
		c.Ack = hec.AckOn
		c.MaxInFlight = 1
	}, front.URL)
	log := &ticketLog{srv: srv}
	s := c.NewBatchSender(time.Hour, func(hec.Outcome) {})
	s.OnTicket(log.add)
	for i := 0; i < 5; i++ {
		_ = s.Add(context.Background(), alert(i, 100), nil)
	}
	_ = s.Flush(context.Background())
	c.Wait()
	cut.Store(1)
	for i := 5; i < 15; i++ {
		_ = s.Add(context.Background(), alert(i, 100), nil)
	}
	_ = s.Flush(context.Background())
	c.Wait()
	told := log.all()
	// 0 (first batch); predicted 1 for the second, kept after the 504; the second batch sent
	// again and the third batch on a new channel
	if len(told) < 3 || told[1].AckID != 1 || told[1].Void {
		t.Fatalf("tickets told: %+v; want the predicted 1 kept", told)
	}
	for _, tk := range told[2:] {
		if tk.Void {
			t.Errorf("a ticket was declared void after the 504: %+v (the request may have been indexed with it)", told)
		}
		if tk.Channel == told[1].Channel {
			t.Errorf("a request went on the channel after the 504: %+v", told)
		}
	}
	b := newClient(t, nil, front.URL)
	ok, err := b.Recover(context.Background(), []hec.Ticket{told[0].Ticket, told[1].Ticket})
	if err != nil {
		t.Fatal(err)
	}
	if !ok[1] {
		t.Errorf("the request HEC took behind the 504 is not proven by its predicted ticket: %v", ok)
	}
	if hs := srv.Stats(); hs.Distinct != 15 {
		t.Errorf("%d of 15 indexed", hs.Distinct)
	}
}
