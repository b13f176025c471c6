package hec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/secret"
)

const token = "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"

var update = flag.Bool("update", false, "rewrite golden files")

func newHEC(t testing.TB, opt hectest.Options) *hectest.Server {
	t.Helper()
	if opt.Token == "" {
		opt.Token = token
	}
	if opt.Key == nil {
		opt.Key = eventID
	}
	s := hectest.New(opt)
	t.Cleanup(s.Close)
	return s
}

// eventID names an event by its "id" (the stand-in's duplicate count).
func eventID(raw []byte) string {
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.ID
}

func newClient(t testing.TB, mod func(*hec.Config), urls ...string) *hec.Client {
	t.Helper()
	cfg := hec.Config{
		URLs:           urls,
		Token:          secret.String(token),
		Host:           "collector-1",
		AckTimeout:     2 * time.Second,
		AckInterval:    10 * time.Millisecond,
		BackoffInitial: 5 * time.Millisecond,
		BackoffMax:     50 * time.Millisecond,
		SetAside:       50 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
		MaxInFlight:    4,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := hec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func alert(i int, size int) hec.Record {
	pad := strings.Repeat("x", max(size-120, 0))
	ev := fmt.Sprintf(`{"id":"da%018d_%d","severity":"Medium","title":"Suspicious activity %d","description":"%s"}`, i, i, i, pad)
	return hec.Record{Time: time.Unix(1700000000, int64(i)*1e6).UTC(), Event: []byte(ev), ID: fmt.Sprintf("da%018d_%d", i, i)}
}

// result collects outcomes.
type result struct {
	mu       sync.Mutex
	outcomes []hec.Outcome
}

func (r *result) done(o hec.Outcome) { r.mu.Lock(); r.outcomes = append(r.outcomes, o); r.mu.Unlock() }

func (r *result) sum() (rejected []hec.Rejected, resent int, errs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.outcomes {
		rejected = append(rejected, o.Rejected...)
		resent += o.Resent
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	return
}

// send batches n records through c and waits for every outcome.
func send(t testing.TB, c *hec.Client, n, size int) *result {
	t.Helper()
	res := &result{}
	bt := c.NewBatcher()
	var stop error
	submit := func(b *hec.Batch) {
		if b == nil || stop != nil {
			return
		}
		if stop = c.Submit(context.Background(), b, res.done); stop != nil {
			res.done(hec.Outcome{Batch: b, Err: stop}) // refused after a fatal error
		}
	}
	for i := 0; i < n && stop == nil; i++ {
		submit(bt.Add(alert(i, size)))
	}
	submit(bt.Flush())
	c.Wait()
	return res
}

func TestGoldenBatchBody(t *testing.T) {
	c := newClient(t, func(c *hec.Config) { c.Index = "security"; c.Host = `host "one"` }, "https://splunk.example.com:8088")
	bt := c.NewBatcher()
	for i := 0; i < 3; i++ {
		r := alert(i, 0)
		r.Time = time.Date(2021, 1, 26, 20, 33, 59, 200000000+i*1234567, time.UTC)
		if b := bt.Add(r); b != nil {
			t.Fatal("sealed too early")
		}
	}
	got := bt.Flush().Body()
	const golden = "testdata/batch.golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("batch body differs from %s:\n%s", golden, got)
	}
	// Every envelope is JSON whose event is the record's exact bytes.
	dec := json.NewDecoder(bytes.NewReader(got))
	for i := 0; dec.More(); i++ {
		var env struct {
			Time  json.Number
			Event json.RawMessage
		}
		if err := dec.Decode(&env); err != nil {
			t.Fatal(err)
		}
		if string(env.Event) != string(alert(i, 0).Event) {
			t.Errorf("event %d re-encoded", i)
		}
	}
}

func TestBatcherBounds(t *testing.T) {
	c := newClient(t, func(c *hec.Config) { c.BatchBytes = 10 << 10; c.BatchCount = 7 }, "https://splunk.example.com:8088")
	bt := c.NewBatcher()
	var sealed []*hec.Batch
	for i := 0; i < 40; i++ {
		size := 1000
		if i == 20 {
			size = 50 << 10 // larger than a whole batch: it still goes, alone
		}
		if b := bt.Add(alert(i, size)); b != nil {
			sealed = append(sealed, b)
		}
	}
	sealed = append(sealed, bt.Flush())
	total, alone := 0, false
	for _, b := range sealed {
		total += b.Len()
		if b.Len() > 7 || (b.Size() > 10<<10 && b.Len() > 1) {
			t.Errorf("batch of %d records, %d bytes breaks the bounds", b.Len(), b.Size())
		}
		alone = alone || (b.Len() == 1 && b.Size() > 50<<10)
	}
	if total != 40 || !alone {
		t.Errorf("%d records in batches (want 40); large record alone: %v", total, alone)
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		give     string
		wantErr  string
		wantWarn string
	}{
		{give: "https://splunk.example.com:8088"},
		{give: "https://splunk.example.com:8088/services/collector/event"},
		{give: "https://splunk.example.com:8088/services/collector"},
		{give: "https://http-inputs-acme.splunkcloud.com/services/collector/event/1.0"},
		{give: "http://127.0.0.1:8088"},
		{give: "http://splunk.lab:8088", wantWarn: "plain http"},
		{give: "ftp://splunk.example.com", wantErr: "not an http(s) URL"},
		{give: "splunk.example.com:8088", wantErr: "not an http(s) URL"},
		{give: "https://user:hunter2@splunk.example.com", wantErr: "must not carry credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			c, err := hec.New(hec.Config{URLs: []string{tt.give}, Token: secret.String(token)})
			if tt.wantErr != "" {
				var fe *hec.FieldError
				if !errors.As(err, &fe) || fe.Field != "URLs" || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error shows a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			w := strings.Join(c.Warnings(), "\n")
			if (tt.wantWarn == "") != (w == "") || !strings.Contains(w, tt.wantWarn) {
				t.Errorf("warnings %q, want %q", w, tt.wantWarn)
			}
		})
	}
	c, err := hec.New(hec.Config{URLs: []string{"https://x:8088"}, Token: secret.String(token), InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(strings.Join(c.Warnings(), " "), "verification is off") {
		t.Error("insecure_skip_verify is not warned about")
	}
}

// Each ack mode against tokens with and without acks: everything indexed once.
func TestDeliveryModes(t *testing.T) {
	tests := []struct {
		mode    hec.AckMode
		tokAck  bool
		wantAck bool
		wantErr string
	}{
		{mode: hec.AckAuto, tokAck: true, wantAck: true},
		{mode: hec.AckAuto, tokAck: false, wantAck: false},
		{mode: hec.AckOn, tokAck: true, wantAck: true},
		{mode: hec.AckOff, tokAck: false},
		{mode: hec.AckOn, tokAck: false, wantErr: "indexer acknowledgement is required"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/token ack %v", tt.mode, tt.tokAck), func(t *testing.T) {
			srv := newHEC(t, hectest.Options{Ack: tt.tokAck})
			srv.SetAckDelay(30 * time.Millisecond)
			c := newClient(t, func(c *hec.Config) { c.Ack = tt.mode; c.BatchBytes = 64 << 10 }, srv.URL)
			res := send(t, c, 2000, 1500)
			rej, resent, errs := res.sum()
			st := srv.Stats()
			if tt.wantErr != "" {
				if len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.wantErr) || !hec.IsFatal(errs[0]) {
					t.Fatalf("errs = %v, want a fatal %q", errs, tt.wantErr)
				}
				return
			}
			if len(errs) > 0 || len(rej) > 0 || resent > 0 {
				t.Fatalf("errors %v, rejected %d, resent %d", errs, len(rej), resent)
			}
			if st.Distinct != 2000 || st.Duplicates != 0 {
				t.Errorf("indexed %d distinct, %d duplicates; want 2000, 0", st.Distinct, st.Duplicates)
			}
			on, known := c.AcksOn()
			if !known || on != tt.wantAck {
				t.Errorf("acks on %v (known %v), want %v", on, known, tt.wantAck)
			}
			if tt.wantAck && st.AckQueries == 0 {
				t.Error("acks were never polled")
			}
		})
	}
}

// The HEC faults of a bad day: every event is indexed; duplicates only where a reply or an
// ack was lost, and then counted.
func TestFaultsLoseNothing(t *testing.T) {
	for _, ack := range []bool{true, false} {
		t.Run(fmt.Sprint("ack ", ack), func(t *testing.T) {
			srv := newHEC(t, hectest.Options{Ack: ack, Seed: 9})
			srv.SetFailures(0.10, 0.05, 0.05, 0.05)
			// A give-up time, as in run --once: without one, a batch whose ack is lost four times
			// in a row fails (for the daemon to try again later), which this test does not do.
			c := newClient(t, func(c *hec.Config) {
				c.BatchBytes = 32 << 10
				c.AckTimeout = 300 * time.Millisecond
				c.GiveUpAfter = time.Minute
			}, srv.URL)
			res := send(t, c, 5000, 1500)
			rej, resent, errs := res.sum()
			st := srv.Stats()
			t.Logf("requests %d, busy %d, dropped %d, lost replies %d, acks lost %d; duplicates %d, resent %d",
				st.Requests, st.ByStatus[503], st.Dropped, st.LostReply, st.AcksLost, st.Duplicates, resent)
			if len(errs) > 0 || len(rej) > 0 {
				t.Fatalf("errors %v, rejected %d", errs, len(rej))
			}
			if st.Distinct != 5000 {
				t.Errorf("indexed %d distinct, want 5000", st.Distinct)
			}
			if st.Duplicates > resent {
				t.Errorf("%d duplicates but only %d records counted as resent", st.Duplicates, resent)
			}
			if st.LostReply+st.AcksLost > 0 && st.Duplicates == 0 {
				t.Error("replies or acks were lost, yet no duplicate: the scenario proves nothing")
			}
			if st.ByStatus[503] == 0 || st.Dropped == 0 || st.LostReply == 0 {
				t.Error("not every fault happened")
			}
		})
	}
}

// A record Splunk refuses mid-batch: it comes back whole and the rest go on. Those before it
// are indexed; without acks HTTP's word proves it, so they are not sent again; with acks, a 400
// has no ack id and they go again for one (each at most once more).
func TestPartialBatch(t *testing.T) {
	for _, tc := range []struct {
		ack  bool // the token's
		mode hec.AckMode
	}{{true, hec.AckAuto}, {false, hec.AckOff}, {false, hec.AckAuto}} {
		ack := tc.ack
		t.Run(fmt.Sprint("ack ", ack, " mode ", tc.mode), func(t *testing.T) {
			srv := newHEC(t, hectest.Options{Ack: ack})
			bad := map[string]bool{}
			for _, i := range []int{0, 17, 18, 250, 499} {
				bad[alert(i, 0).ID] = true
			}
			srv.Reject(func(ev []byte) bool { return bad[eventID(ev)] })
			c := newClient(t, func(c *hec.Config) { c.BatchBytes = 64 << 10; c.Ack = tc.mode }, srv.URL)
			res := send(t, c, 500, 1000)
			rej, resent, errs := res.sum()
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			st := srv.Stats()
			if st.Distinct != 495 {
				t.Errorf("indexed %d distinct, want 495", st.Distinct)
			}
			switch {
			case tc.mode == hec.AckOff && (st.Duplicates != 0 || resent != 0):
				t.Errorf("acks off: duplicates %d, resent %d, want 0", st.Duplicates, resent)
			case ack && resent == 0:
				t.Errorf("with acks: nothing resent: the records before a refused one must go again for an ack")
			case st.Duplicates > resent:
				// Auto mode without acks may resend too, before a reply has shown acks are off.
				t.Errorf("duplicates %d, but only %d counted as resent", st.Duplicates, resent)
			}
			if len(rej) != 5 {
				t.Fatalf("%d rejected, want 5", len(rej))
			}
			for _, r := range rej {
				if !bad[r.ID] || r.Code != 6 || !bytes.Contains(r.Envelope, []byte(`"event":{"id":"`+r.ID)) || !json.Valid(r.Envelope) {
					t.Errorf("rejected %s code %d: envelope not whole or wrong record", r.ID, r.Code)
				}
			}
		})
	}
}

// With acks, the records before a refused one are in HEC's pipeline with no ack id to say when
// they are safe: a HEC restart then loses them. The client sends them again for an ack, so none
// is lost (before, it counted them indexed on the 400's word).
func TestPartialBatchWithAcksSurvivesARestart(t *testing.T) {
	for _, mode := range []hec.AckMode{hec.AckAuto, hec.AckOn} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			srv := newHEC(t, hectest.Options{Ack: true})
			// Acks slow enough that the restart comes before the refused request's records
			// are safe, however slow this machine.
			srv.SetAckLatency(func(*mrand.Rand) time.Duration { return time.Second })
			bad := alert(17, 0).ID
			srv.Reject(func(ev []byte) bool { return eventID(ev) == bad })
			forgot := make(chan bool)
			go func() { // the restart, once HEC has refused the record and holds those before it
				deadline := time.Now().Add(10 * time.Second)
				for srv.Stats().Partial == 0 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if srv.Stats().Partial > 0 {
					srv.ForgetChannels()
				}
				forgot <- srv.Stats().Partial > 0
			}()
			c := newClient(t, func(c *hec.Config) { c.BatchBytes = 1 << 20; c.AckTimeout = 2 * time.Second; c.Ack = mode }, srv.URL)
			res := send(t, c, 100, 500)
			if !<-forgot {
				t.Fatal("HEC never refused the record: the case is not tested")
			}
			rej, _, errs := res.sum()
			if len(errs) > 0 || len(rej) != 1 || rej[0].ID != bad {
				t.Fatalf("errors %v, rejected %+v", errs, rej)
			}
			if st := srv.Stats(); st.Distinct != 99 || st.LostInRestart == 0 {
				t.Errorf("indexed %d distinct after the restart, want 99; lost in the restart %d, want some (%+v)", st.Distinct, st.LostInRestart, st)
			}
		})
	}
}

func TestTooLargeSplits(t *testing.T) {
	srv := newHEC(t, hectest.Options{MaxBody: 20 << 10})
	c := newClient(t, func(c *hec.Config) { c.BatchBytes = 200 << 10; c.NoGzip = true }, srv.URL)
	res := hec.Record{}
	_ = res
	out := &result{}
	bt := c.NewBatcher()
	for i := 0; i < 100; i++ {
		size := 1500
		if i == 42 {
			size = 30 << 10 // alone over the server's limit
		}
		bt.Add(alert(i, size))
	}
	if err := c.Submit(context.Background(), bt.Flush(), out.done); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	rej, _, errs := out.sum()
	st := srv.Stats()
	if len(errs) > 0 || len(rej) != 1 || rej[0].Code != 413 || rej[0].ID != alert(42, 0).ID {
		t.Fatalf("errors %v, rejected %+v", errs, rej)
	}
	if st.Distinct != 99 || st.Duplicates != 0 || st.ByStatus[413] == 0 {
		t.Errorf("indexed %d (want 99), duplicates %d, 413s %d", st.Distinct, st.Duplicates, st.ByStatus[413])
	}
}

func TestFatalErrorsSayWhy(t *testing.T) {
	tests := []struct {
		name string
		opt  hectest.Options
		mod  func(*hec.Config)
		want string
	}{
		{"wrong token", hectest.Options{Token: "11111111-2222-3333-4444-555555555555"}, nil, "HEC token is not valid"},
		{"disabled token", hectest.Options{Disabled: true}, nil, "token is disabled"},
		{"index not allowed", hectest.Options{Indexes: []string{"main"}}, func(c *hec.Config) { c.Index = "defender" }, `may not write to index "defender"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHEC(t, tt.opt)
			c := newClient(t, tt.mod, srv.URL)
			res := send(t, c, 10, 500)
			_, _, errs := res.sum()
			if len(errs) == 0 || !hec.IsFatal(errs[0]) || !strings.Contains(errs[0].Error(), tt.want) {
				t.Fatalf("errs = %v, want a fatal %q", errs, tt.want)
			}
			if strings.Contains(errs[0].Error(), token) {
				t.Errorf("the token is in the error: %v", errs[0])
			}
			if err := c.Submit(context.Background(), &hec.Batch{}, func(hec.Outcome) {}); err == nil {
				t.Error("Submit after a fatal error should fail")
			}
		})
	}
}

// Two indexers, one down: everything goes through the other; once both are up, both work.
func TestSeveralURLs(t *testing.T) {
	a := newHEC(t, hectest.Options{Ack: true})
	b := newHEC(t, hectest.Options{Ack: true})
	downURL := b.URL
	b.Close() // refuses connections
	c := newClient(t, func(c *hec.Config) { c.BatchBytes = 16 << 10 }, downURL, a.URL)
	res := send(t, c, 1000, 1000)
	_, resent, errs := res.sum()
	if len(errs) > 0 || a.Stats().Distinct != 1000 || resent != 0 {
		t.Fatalf("errs %v, indexed %d, resent %d (%+v)", errs, a.Stats().Distinct, resent, c.Stats())
	}
	if c.Stats().SetAside == 0 {
		t.Error("the down URL was never set aside")
	}
	b2 := newHEC(t, hectest.Options{})
	c2 := newClient(t, func(c *hec.Config) { c.BatchBytes = 16 << 10 }, a.URL, b2.URL)
	send(t, c2, 1000, 1000)
	if b2.Stats().Indexed == 0 || a.Stats().Indexed == 1000 {
		t.Errorf("batches not spread: %d and %d", a.Stats().Indexed-1000, b2.Stats().Indexed)
	}
}

// HEC down for a while: Submit blocks once MaxInFlight batches wait (reading can pause), and
// everything arrives once HEC is back.
func TestDownThenBackWithBackpressure(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetDown(true)
	c := newClient(t, func(c *hec.Config) { c.BatchBytes = 8 << 10; c.MaxInFlight = 3 }, srv.URL)
	bt := c.NewBatcher()
	res := &result{}
	submitted := make(chan int, 1000)
	go func() {
		n := 0
		for i := 0; i < 300; i++ {
			if b := bt.Add(alert(i, 1000)); b != nil {
				if err := c.Submit(context.Background(), b, res.done); err != nil {
					t.Error(err)
				}
				n++
				submitted <- n
			}
		}
		if err := c.Submit(context.Background(), bt.Flush(), res.done); err != nil {
			t.Error(err)
		}
		close(submitted)
	}()
	time.Sleep(300 * time.Millisecond)
	if got := len(submitted); got > 3 {
		t.Errorf("%d batches accepted while HEC was down, want at most MaxInFlight (3)", got)
	}
	srv.SetDown(false)
	for range submitted {
	}
	c.Wait()
	_, _, errs := res.sum()
	if st := srv.Stats(); len(errs) > 0 || st.Distinct != 300 || st.Duplicates != 0 {
		t.Errorf("errs %v, indexed %d, duplicates %d", errs, st.Distinct, st.Duplicates)
	}
}

func TestHealth(t *testing.T) {
	good := newHEC(t, hectest.Options{Ack: true})
	badTok := newHEC(t, hectest.Options{Token: "11111111-2222-3333-4444-555555555555"})
	down := newHEC(t, hectest.Options{})
	down.SetDown(true)
	gone := newHEC(t, hectest.Options{})
	goneURL := gone.URL
	gone.Close()
	c := newClient(t, nil, good.URL, badTok.URL, down.URL, goneURL)
	hs := c.Health(context.Background())
	want := []struct {
		up, tok bool
		msg     string
	}{
		{true, true, ""},
		{true, false, "token is not valid"},
		{false, false, "unhealthy"},
		{false, false, "does not answer"},
	}
	for i, h := range hs {
		if h.Up != want[i].up || h.TokenOK != want[i].tok || (want[i].msg == "") != (h.Err == nil) ||
			(h.Err != nil && !strings.Contains(h.Err.Error(), want[i].msg)) {
			t.Errorf("%s: up %v token %v err %v; want %+v", h.URL, h.Up, h.TokenOK, h.Err, want[i])
		}
	}
	if good.Stats().Indexed != 0 {
		t.Error("the health probe indexed something")
	}
}

// The stand-in holds an ack token to channels, as Splunk does.
func TestStandInRequiresChannelWithAck(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	for _, tt := range []struct {
		channel string
		want    int
	}{{"", 400}, {"not-a-guid", 400}, {"0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", 200}} {
		req, _ := httpRequest(srv.URL+"/services/collector/event", `{"event":{"id":"x"}}`)
		req.Header.Set("Authorization", "Splunk "+token)
		if tt.channel != "" {
			req.Header.Set("X-Splunk-Request-Channel", tt.channel)
		}
		resp, err := httpDo(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp != tt.want {
			t.Errorf("channel %q: %d, want %d", tt.channel, resp, tt.want)
		}
	}
}
