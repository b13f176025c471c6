package hec_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// Each batch's Tag is the tag of its last record; a trickle is sent after the linger time.
func TestStreamTagsAndLinger(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	c := newClient(t, func(c *hec.Config) { c.BatchCount = 7 }, srv.URL)
	var mu sync.Mutex
	lastOf := map[int]bool{}
	var got []hec.Outcome
	s := c.NewBatchSender(50*time.Millisecond, func(o hec.Outcome) {
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	})
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if err := s.Add(ctx, alert(i, 200), i); err != nil {
			t.Fatal(err)
		}
	}
	// Two more, slowly: the linger timer must send them without a Flush.
	time.Sleep(100 * time.Millisecond)
	for i := 30; i < 32; i++ {
		if err := s.Add(ctx, alert(i, 200), i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for srv.Stats().Distinct < 32 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.Wait()
	if n := srv.Stats().Distinct; n != 32 {
		t.Fatalf("indexed %d of 32 without a Flush: linger did not send", n)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, o := range got {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		total += o.Batch.Len()
		tag := o.Batch.Tag.(int)
		// The batch's last envelope holds record number tag.
		body := string(o.Batch.Body())
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if !strings.Contains(lines[len(lines)-1], alert(tag, 0).ID) {
			t.Errorf("batch tagged %d does not end with record %d", tag, tag)
		}
		lastOf[tag] = true
	}
	if total != 32 || !lastOf[31] {
		t.Errorf("%d records in outcomes; last tag 31 seen: %v", total, lastOf[31])
	}
}

// TLS: a private CA is trusted only through CAFile; insecure_skip_verify also works, warned.
func TestTLSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/collector/health" {
			_, _ = w.Write([]byte(`{"text":"HEC is healthy","code":17}`))
			return
		}
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"text":"No data","code":5}`))
	}))
	defer srv.Close()
	if v := srv.TLS.MinVersion; v != 0 && v < tls.VersionTLS12 {
		t.Fatalf("test server TLS %x", v)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*hec.Config)
		ok   bool
	}{
		{"system roots only", nil, false},
		{"ca file", func(c *hec.Config) { c.CAFile = caFile }, true},
		{"skip verify", func(c *hec.Config) { c.InsecureSkipVerify = true }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.mod, srv.URL)
			h := c.Health(context.Background())[0]
			if (h.Err == nil) != tt.ok || h.TokenOK != tt.ok {
				t.Errorf("health %+v, want ok=%v", h, tt.ok)
			}
		})
	}
}

// Stopping (a cancelled context) fails the batches in flight without marking the client
// fatal: the next run starts clean.
func TestCancelIsNotFatal(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(time.Hour) // acks never arrive in time
	c := newClient(t, nil, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	res := &result{}
	bt := c.NewBatcher()
	bt.Add(alert(1, 100))
	if err := c.Submit(ctx, bt.Flush(), res.done); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	c.Wait()
	_, _, errs := res.sum()
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("errs = %v, want context.Canceled", errs)
	}
	if c.Err() != nil {
		t.Errorf("client marked fatal by a cancel: %v", c.Err())
	}
}

// streamTimers stands in for time.AfterFunc: the test fires each linger timer when it wants,
// as late as a timer that fired just as it was stopped and then waited for the stream.
type streamTimers struct {
	mu sync.Mutex
	fs []func()
}

func (st *streamTimers) afterFunc(_ time.Duration, f func()) *time.Timer {
	st.mu.Lock()
	st.fs = append(st.fs, f)
	st.mu.Unlock()
	return time.AfterFunc(time.Hour, func() {}) // stoppable, never fires
}

func (st *streamTimers) fire(t *testing.T, i int) {
	t.Helper()
	st.mu.Lock()
	if i >= len(st.fs) {
		st.mu.Unlock()
		t.Fatalf("timer %d was never started (%d were)", i, len(st.fs))
	}
	f := st.fs[i]
	st.mu.Unlock()
	f()
}

// outcomes counts, per record tag, the outcomes that covered it (tags are consecutive ints,
// so a batch covers Tag-Len+1 … Tag).
type outcomes struct {
	mu   sync.Mutex
	ok   map[int]int
	errs map[int][]error
}

func (o *outcomes) done(out hec.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	last := out.Batch.Tag.(int)
	for tag := last - out.Batch.Len() + 1; tag <= last; tag++ {
		if out.Err != nil {
			o.errs[tag] = append(o.errs[tag], out.Err)
		} else {
			o.ok[tag]++
		}
	}
}

// wait waits until each of tags has an outcome, or a few seconds.
func (o *outcomes) wait(tags ...int) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		all := true
		for _, tag := range tags {
			all = all && o.ok[tag]+len(o.errs[tag]) > 0
		}
		o.mu.Unlock()
		if all {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A linger timer outlives the context of the Add that started it: the caller's window may be
// over (its context cancelled) and records of the next one waiting. Whenever the timer fires,
// it sends what waits with the stream's current context, and every batch gets an outcome.
func TestStreamLingerAcrossContexts(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	tests := []struct {
		name string
		run  func(t *testing.T, s *hec.BatchSender, tm *streamTimers, res *outcomes)
	}{
		{"timer fires after its context ended and a new one added records", func(t *testing.T, s *hec.BatchSender, tm *streamTimers, _ *outcomes) {
			ctx1, cancel1 := context.WithCancel(context.Background())
			must(t, s.Add(ctx1, alert(1, 200), 1)) // starts timer 0
			cancel1()                              // the window is over
			must(t, s.Add(context.Background(), alert(2, 200), 2))
			tm.fire(t, 0) // the linger of record 1 is due: 1 and 2 go, with the new context
		}},
		{"timer fires late, after its batch went with a Flush", func(t *testing.T, s *hec.BatchSender, tm *streamTimers, res *outcomes) {
			ctx1, cancel1 := context.WithCancel(context.Background())
			must(t, s.Add(ctx1, alert(1, 200), 1)) // timer 0
			must(t, s.Flush(ctx1))                 // 1 goes
			res.wait(1)                            // and is confirmed: the window is over
			cancel1()
			must(t, s.Add(context.Background(), alert(2, 200), 2)) // timer 1
			tm.fire(t, 0)                                          // stopped too late: must leave record 2 alone
			tm.fire(t, 1)                                          // record 2's own linger
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, func(c *hec.Config) { c.MaxInFlight = 1 }, srv.URL)
			res := &outcomes{ok: map[int]int{}, errs: map[int][]error{}}
			s := c.NewBatchSender(time.Hour, res.done)
			tm := &streamTimers{}
			hec.SetSenderTimer(s, tm.afterFunc)
			tt.run(t, s, tm, res)
			res.wait(1, 2)
			c.Wait()
			res.mu.Lock()
			defer res.mu.Unlock()
			for _, tag := range []int{1, 2} {
				if res.ok[tag] != 1 || len(res.errs[tag]) > 0 {
					t.Errorf("record %d: %d confirmed, errors %v; want confirmed once (no outcome means a caller waits forever)", tag, res.ok[tag], res.errs[tag])
				}
			}
		})
	}
}

// A batch the client will not take (its context ended while MaxInFlight batches are
// unconfirmed) is not dropped: its outcome carries the error, whether the linger timer, Add
// or Flush submitted it.
func TestStreamRefusedBatchHasAnOutcome(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	gate := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/event") {
			<-gate // the batch in flight stays unconfirmed until the test says
		}
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c := newClient(t, func(c *hec.Config) { c.MaxInFlight = 1; c.BatchCount = 2 }, front.URL)
	var opened sync.Once
	open := func() { opened.Do(func() { close(gate) }) }
	t.Cleanup(open) // before the client closes: it waits for the batch in flight
	res := &outcomes{ok: map[int]int{}, errs: map[int][]error{}}
	s := c.NewBatchSender(time.Hour, res.done)
	tm := &streamTimers{}
	hec.SetSenderTimer(s, tm.afterFunc)
	bg := context.Background()
	must(t, s.Add(bg, alert(0, 200), 0)) // timer 0
	must(t, s.Flush(bg))                 // in flight, held: no room for another batch
	ctx, cancel := context.WithCancel(bg)
	cancel()
	// The linger timer: 1 alone.
	must(t, s.Add(ctx, alert(1, 200), 1)) // timer 1
	tm.fire(t, 1)
	// Add: 2 and 3 fill a batch, 4 seals it.
	must(t, s.Add(ctx, alert(2, 200), 2)) // timer 2
	must(t, s.Add(ctx, alert(3, 200), 3))
	if err := s.Add(ctx, alert(4, 200), 4); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a cancelled context and no room: %v, want context.Canceled", err)
	}
	// Flush: 4.
	if err := s.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a cancelled context and no room: %v, want context.Canceled", err)
	}
	open()
	res.wait(0, 1, 2, 3, 4)
	c.Wait()
	res.mu.Lock()
	defer res.mu.Unlock()
	if res.ok[0] != 1 || len(res.errs[0]) > 0 {
		t.Errorf("record 0: %d confirmed, errors %v; want confirmed once", res.ok[0], res.errs[0])
	}
	for tag := 1; tag <= 4; tag++ {
		if res.ok[tag] != 0 || len(res.errs[tag]) != 1 || !errors.Is(res.errs[tag][0], context.Canceled) {
			t.Errorf("record %d: %d confirmed, errors %v; want one outcome with context.Canceled", tag, res.ok[tag], res.errs[tag])
		}
	}
}

// After a fatal error (a token HEC refuses), records still queued in the stream get an
// outcome with that error too, not silence.
func TestStreamAfterFatalEveryRecordHasAnOutcome(t *testing.T) {
	srv := newHEC(t, hectest.Options{Token: "11111111-2222-3333-4444-555555555555"})
	c := newClient(t, func(c *hec.Config) { c.MaxInFlight = 1; c.BatchCount = 1 }, srv.URL)
	res := &outcomes{ok: map[int]int{}, errs: map[int][]error{}}
	s := c.NewBatchSender(time.Hour, res.done)
	bg := context.Background()
	must(t, s.Add(bg, alert(0, 200), 0))
	must(t, s.Add(bg, alert(1, 200), 1)) // 0 goes, and HEC refuses the token
	res.wait(0)
	if err := s.Add(bg, alert(2, 200), 2); !hec.IsFatal(err) { // 1 cannot go; 2 waits
		t.Fatalf("Add after the fatal error: %v, want it", err)
	}
	if err := s.Flush(bg); !hec.IsFatal(err) { // 2 cannot go either
		t.Errorf("Flush after the fatal error: %v, want it", err)
	}
	res.wait(0, 1, 2)
	c.Wait()
	res.mu.Lock()
	defer res.mu.Unlock()
	for tag := 0; tag <= 2; tag++ {
		if res.ok[tag] != 0 || len(res.errs[tag]) != 1 || !hec.IsFatal(res.errs[tag][0]) {
			t.Errorf("record %d: %d confirmed, errors %v; want one outcome with the fatal error", tag, res.ok[tag], res.errs[tag])
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The linger counts from the first record of the batch being filled: a steady stream that
// fills each batch well within it never has a batch sent part-full (which would also close
// the adaptive window, read as "caught up").
func TestLingerBelongsToTheBatchBeingFilled(t *testing.T) {
	srv := newHEC(t, hectest.Options{})
	c := newClient(t, func(c *hec.Config) { c.BatchCount = 5 }, srv.URL)
	res := &result{}
	s := c.NewBatchSender(100*time.Millisecond, res.done)
	for i := 0; i < 60; i++ {
		if err := s.Add(context.Background(), alert(i, 100), i); err != nil {
			t.Fatal(err)
		}
		time.Sleep(8 * time.Millisecond) // a batch of 5 fills in about 40 ms
	}
	_ = s.Flush(context.Background())
	c.Wait()
	res.mu.Lock()
	defer res.mu.Unlock()
	for _, o := range res.outcomes {
		if n := o.Batch.Len(); n != 5 {
			t.Errorf("a batch of %d records went before it was full: the linger of an earlier batch fired", n)
		}
	}
}
