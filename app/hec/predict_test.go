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

// A request HEC answers busy gets no ack id, so the next request on the channel gets the one
// its predicted ticket named: the ticket is declared void before that request goes, else a
// crash would let the other request's ack prove this batch.
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
	// the first batch's ticket (ack id 0), then the second's: predicted 1, void after the
	// busy reply, 1 again
	if len(told) < 4 || told[1].AckID != 1 || told[1].Void || !told[2].Void || told[3].Void || told[3].AckID != 1 {
		t.Fatalf("tickets told: %+v; want predicted 1, void, predicted 1", told)
	}
	if told[2].requests != told[1].requests+1 {
		t.Errorf("the void was told after %d requests, want right after the busy one (%d): before the channel took another",
			told[2].requests, told[1].requests+1)
	}
	if hs := srv.Stats(); hs.Distinct != 10 || hs.Duplicates != 0 {
		t.Errorf("%d of 10 indexed, %d duplicates", hs.Distinct, hs.Duplicates)
	}
}
