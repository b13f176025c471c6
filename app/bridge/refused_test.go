package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
)

// A proxy starts damaging every request part-way through a drain: delivery stops with an error
// that says what to check, nothing more goes to the dead-letter file, and once the proxy is
// fixed the next run delivers every alert, the refused ones included.
func TestSystematicRefusalStops(t *testing.T) {
	r := newRig(t, true, 500)
	var seen, refused atomic.Int64
	r.hec.Reject(func([]byte) bool {
		if seen.Add(1) <= 100 {
			return false
		}
		refused.Add(1)
		return true
	})
	small := func(c *hec.Config) { c.BatchCount = 10 }
	st, err := r.drain(context.Background(), small)
	if !errors.Is(err, errRefusedAll) {
		t.Fatalf("err = %v, want errRefusedAll", err)
	}
	for _, want := range []string{`HEC code 6 "Invalid data format"`, "proxy", "alters request bodies", "index, sourcetype", "sent again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if _, err := os.Stat(DeadLetterPath(r.dir, "tenant1")); !errors.Is(err, os.ErrNotExist) || st.Rejected != 0 {
		t.Errorf("alerts went to the dead-letter file (%d counted, file: %v)", st.Rejected, err)
	}
	// It stopped soon: the refused batches that prove it systematic, and those in flight.
	t.Logf("indexed %d, refused %d before stopping", r.hec.Stats().Distinct, refused.Load())
	if n := refused.Load(); n > refusedRecords+4*10+10 {
		t.Errorf("Splunk refused %d alerts before delivery stopped", n)
	}
	// Fixed: the next run sends what was refused; nothing was committed past it.
	r.hec.Reject(nil)
	if _, err := r.drain(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	hs := r.hec.Stats()
	if lost := r.lost(); len(lost) > 0 || hs.Distinct != 500 {
		t.Errorf("after the fix: %d alerts lost, %d indexed", len(lost), hs.Distinct)
	}
	t.Logf("duplicates after the fix: %d", hs.Duplicates)
}

// The pump's bookkeeping, batch by batch: refused alerts are held until an alert sent after
// them is indexed (rare bad alerts: dead-lettered), or until they prove systematic (stop:
// nothing dead-lettered, the frontier before them). The frontier stops at the last indexed
// alert before a run, also inside a batch. The end of the drain's last window settles
// nothing: a run held then stays held (carried to the next drain).
func TestRefusedBatchesHeldBack(t *testing.T) {
	type batch struct {
		n, refused int  // records, and how many of them Splunk refused: the last ones
		first      bool // the first ones instead
		slot       int  // the order of sending, from 1 (0: the batch's place): a batch goes after the replies to those in earlier slots
	}
	tests := []struct {
		name         string
		give         []batch
		order        []int // arrival order of the outcomes; nil: in order
		end          bool  // the drain's last window ends after these
		wantFrontier uint64
		wantDead     int
		wantStop     bool
		wantCarry    bool
	}{
		{name: "all indexed", give: []batch{{10, 0, false, 0}, {10, 0, false, 0}}, wantFrontier: 20},
		{name: "a rare bad alert", give: []batch{{10, 1, true, 0}, {10, 0, false, 0}}, wantFrontier: 20, wantDead: 1},
		{name: "a rare bad alert, the batch's last", give: []batch{{10, 1, false, 0}, {10, 0, false, 0}}, wantFrontier: 20, wantDead: 1},
		{name: "a rare bad alert, the batch's last, held until it is clear", give: []batch{{10, 1, false, 0}}, wantFrontier: 9},
		{name: "a rare bad alert, the window's last, carried", give: []batch{{10, 1, false, 0}}, end: true, wantFrontier: 9, wantCarry: true},
		{name: "a rare bad alert inside a batch", give: []batch{{10, 0, false, 0}, {10, 7, false, 0}, {10, 0, false, 0}}, wantFrontier: 30, wantDead: 7},
		{name: "the run starts part-way through a batch", give: []batch{{10, 0, false, 0}, {10, 7, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}}, wantFrontier: 13, wantStop: true},
		{name: "a bad alert before the run", give: []batch{{10, 0, false, 0}, {10, 1, true, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}}, wantFrontier: 20, wantDead: 1, wantStop: true},
		{name: "one batch refused whole, then indexed ones", give: []batch{{10, 0, false, 0}, {10, 10, false, 0}, {10, 0, false, 0}}, wantFrontier: 30, wantDead: 10},
		{name: "refused whole, held until it is clear", give: []batch{{10, 0, false, 0}, {10, 10, false, 0}, {10, 10, false, 0}}, wantFrontier: 10},
		{name: "refused at the end of the window, carried", give: []batch{{10, 0, false, 0}, {10, 10, false, 0}, {10, 10, false, 0}}, end: true, wantFrontier: 10, wantCarry: true},
		{name: "three batches but few alerts", give: []batch{{5, 5, false, 0}, {5, 5, false, 0}, {5, 5, false, 0}, {5, 0, false, 0}}, wantFrontier: 20, wantDead: 15},
		{name: "many alerts but two batches", give: []batch{{40, 40, false, 0}, {40, 40, false, 0}, {1, 0, false, 0}}, wantFrontier: 81, wantDead: 80},
		{name: "systematic", give: []batch{{10, 0, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {10, 0, false, 0}}, wantFrontier: 10, wantStop: true},
		{name: "systematic, at the end of the window", give: []batch{{10, 0, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}}, end: true, wantFrontier: 10, wantStop: true},
		{name: "systematic, outcomes out of order", give: []batch{{10, 0, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}, {10, 0, false, 0}}, order: []int{4, 3, 1, 2, 0}, wantFrontier: 10, wantStop: true},
		{name: "partly refused batches are not a run", give: []batch{{20, 20, false, 0}, {20, 19, false, 0}, {20, 20, false, 0}, {20, 20, false, 0}}, end: true, wantFrontier: 21, wantDead: 20, wantCarry: true},
		// Several batches in flight: a batch sent before Splunk began refusing may be indexed
		// after one sent later was refused. It proves nothing about the refused one.
		{name: "indexed, but sent before the refusal", give: []batch{{10, 0, false, 1}, {20, 20, false, 3}, {20, 0, false, 2}, {20, 20, false, 4}, {20, 20, false, 5}}, wantFrontier: 10, wantStop: true},
		{name: "indexed, but sent before the refusal, then the window ends", give: []batch{{10, 0, false, 1}, {20, 20, false, 3}, {20, 0, false, 2}}, end: true, wantFrontier: 10, wantCarry: true},
		{name: "indexed, sent after the refusal", give: []batch{{10, 0, false, 1}, {20, 20, false, 2}, {20, 0, false, 3}}, wantFrontier: 50, wantDead: 20},
		{name: "indexed before, then indexed after the refusal", give: []batch{{10, 0, false, 1}, {20, 20, false, 3}, {20, 0, false, 2}, {10, 0, false, 4}}, wantFrontier: 60, wantDead: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, r, dir := newBarePump(t)
			var outs []Outcome
			for i, b := range tt.give {
				slot := b.slot
				if slot == 0 {
					slot = i + 1
				}
				// The sink's event count: a batch's requests and replies come after those of
				// earlier slots; a refused first part is answered before the rest is sent.
				base := uint64(10 * slot)
				sent, refused := base+1, base+2
				if b.first {
					sent, refused = base+3, base+2
				}
				var rej []Rejected
				for k := 0; k < b.refused; k++ {
					at := b.n - b.refused + k
					if b.first {
						at = k
					}
					rej = append(rej, Rejected{ID: fmt.Sprintf("b%d-%d", i, at), Index: at, Envelope: []byte(`{"event":{}}`), Code: 6, Text: "Invalid data format", Refused: refused})
				}
				if b.refused == b.n {
					sent = 0
				}
				outs = append(outs, Outcome{Last: p.takeN(r, b.n), N: b.n, Rejected: rej, Sent: sent})
			}
			order := tt.order
			if order == nil {
				for i := range outs {
					order = append(order, i)
				}
			}
			for _, i := range order {
				p.report(outs[i])
			}
			p.mu.Lock()
			var carry *checkpoint.State
			if tt.end && p.failed == nil && len(p.front.held) > 0 {
				carry = p.endLocked(time.Now())
			}
			frontier, failed := p.front.at, p.failed
			for p.saving {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if frontier != tt.wantFrontier {
				t.Errorf("frontier %d, want %d", frontier, tt.wantFrontier)
			}
			if got := errors.Is(failed, errRefusedAll); got != tt.wantStop {
				t.Errorf("stopped: %v (%v), want %v", got, failed, tt.wantStop)
			}
			if got := deadLetters(t, DeadLetterPath(dir, "tenant1")); got != tt.wantDead {
				t.Errorf("%d alerts dead-lettered, want %d", got, tt.wantDead)
			}
			if got := carry != nil && carry.Held != nil && carry.Window != nil; got != tt.wantCarry {
				t.Errorf("carried: %v (%+v), want %v", got, carry, tt.wantCarry)
			}
		})
	}
}

// takeN hands the pump n records, as a Source does, and returns the last one's tag.
func (p *Pump) takeN(r *pass, n int) *Tag {
	var t *Tag
	for k := 0; k < n; k++ {
		t = p.take(r, Record{ID: fmt.Sprint(k), Time: time.Now(), Data: []byte(`{}`)}, nil)
	}
	return t
}

// newBarePump is a pump with a window begun, fed by hand (takeN, report).
func newBarePump(t *testing.T) (*Pump, *pass, string) {
	t.Helper()
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p := New(testConfig(store, dir), nil, (&scripted{}).open)
	now := time.Now()
	r := p.begin(context.Background(), &checkpoint.State{}, checkpoint.Window{From: now.Add(-time.Hour), To: now}, false, false)
	return p, r, dir
}

func deadLetters(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Errorf("dead-letter line %q", sc.Text())
		}
		n++
	}
	return n
}

// poller runs drains as the daemon does (one pump and one HEC client for every poll), or as
// separate runs do (run --once, the modular input: a new process each time).
type poller struct {
	r      *rig
	daemon bool
	mod    func(*hec.Config)
	p      *Pump
	close  func()
}

func (r *rig) poller(daemon bool, mod func(*hec.Config)) *poller {
	pl := &poller{r: r, daemon: daemon, mod: mod}
	if daemon {
		cfg := hec.Config{URLs: []string{r.hec.URL}, Token: secret.String(hecToken), BatchBytes: 64 << 10,
			AckInterval: 10 * time.Millisecond, AckTimeout: time.Second, BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, SetAside: 50 * time.Millisecond,
			MaxInFlight: 4}
		if mod != nil {
			mod(&cfg)
		}
		hc, err := hec.New(cfg)
		if err != nil {
			r.t.Fatal(err)
		}
		store, err := checkpoint.Open(r.dir, "tenant1")
		if err != nil {
			r.t.Fatal(err)
		}
		pl.p = New(testConfig(store, r.dir), DefenderSource(r.reads), HECSink(hc, 50*time.Millisecond))
		pl.close = func() { hc.Close(); store.Close() }
		r.t.Cleanup(func() {
			if pl.close != nil {
				pl.close()
			}
		})
	}
	return pl
}

func (pl *poller) drain() (Stats, error) {
	if !pl.daemon {
		return pl.r.drain(context.Background(), pl.mod)
	}
	err := pl.p.Drain(context.Background())
	return pl.p.Stats(), err
}

// stop ends the daemon (it stops on an error that needs a fix), so that another run can lock the checkpoint.
func (pl *poller) stop() {
	if pl.close != nil {
		pl.close()
		pl.close = nil
	}
}

func (r *rig) checkpoint() *checkpoint.State {
	r.t.Helper()
	b, err := os.ReadFile(r.dir + "/tenant1.json")
	if err != nil {
		r.t.Fatal(err)
	}
	st, err := checkpoint.Parse(b)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// addNew adds n alerts updated after everything read so far.
func (r *rig) addNew(n int) {
	start := time.Now()
	r.api.AddAlerts(n, func(i int) time.Time { return start.Add(time.Duration(i) * time.Microsecond) })
	time.Sleep(2 * time.Millisecond) // the next window ends after them
}

// A proxy damages every request, and each poll finds about one batch: no window holds three
// refused batches. The refusal is still one run across polls, in the daemon (one pump for
// every poll) and across separate runs (run --once, the modular input): delivery stops with
// errRefusedAll, nothing goes to the dead-letter file, the checkpoint stays before the run,
// and once the proxy is fixed every alert is delivered.
func TestRefusalAcrossPollsStops(t *testing.T) {
	for _, daemon := range []bool{true, false} {
		t.Run(map[bool]string{true: "daemon", false: "separate runs"}[daemon], func(t *testing.T) {
			r := newRig(t, true, 30)
			start := time.Now()
			r.hec.Reject(func([]byte) bool { return true })
			pl := r.poller(daemon, func(c *hec.Config) { c.BatchBytes = 1 << 20 }) // 30 alerts: one batch
			stopped := 0
			for poll := 1; poll <= 5 && stopped == 0; poll++ {
				if poll > 1 {
					r.addNew(30)
				}
				st, err := pl.drain()
				switch {
				case errors.Is(err, errRefusedAll):
					stopped = poll
				case err != nil:
					t.Fatalf("poll %d: %v", poll, err)
				case st.Held == 0:
					t.Errorf("poll %d: nothing held, yet Splunk refused everything", poll)
				}
				t.Logf("poll %d: err %v, held %d, dead-lettered %d", poll, err, st.Held, st.Rejected)
				if st.Rejected != 0 {
					t.Errorf("poll %d: %d alerts went to the dead-letter file", poll, st.Rejected)
				}
			}
			if stopped == 0 {
				t.Errorf("5 polls of refused alerts did not stop delivery")
			}
			if n := deadLetters(t, DeadLetterPath(r.dir, "tenant1")); n > 0 {
				t.Errorf("%d alerts in the dead-letter file", n)
			}
			if cp := r.checkpoint(); cp.Watermark.After(start) {
				t.Errorf("the checkpoint moved past the refused alerts: watermark %v", cp.Watermark)
			}
			// Fixed: the next run sends everything.
			pl.stop()
			r.hec.Reject(nil)
			if _, err := r.drain(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if lost, hs := r.lost(), r.hec.Stats(); len(lost) > 0 || hs.Distinct != 30*stopped {
				t.Errorf("after the fix: %d alerts lost, %d indexed, want %d", len(lost), hs.Distinct, 30*stopped)
			}
			if cp := r.checkpoint(); cp.Held != nil || cp.Window != nil {
				t.Errorf("after the fix the checkpoint still holds a run: %+v", cp)
			}
		})
	}
}

// Rare bad alerts that are the last ones read wait in the checkpoint for what follows: a
// newer alert indexed after them shows Splunk is fine (they go to the dead-letter file then);
// with nothing newer, they go there after quietDrains polls. Alerts before them are committed
// and sent twice at most once (with acks, those sharing the first refused one's request), and a
// run sent again on every poll counts once (two batches refused
// whole, sent three times, are not six batches: no stop).
func TestLastAlertsRefusedAreCarried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bad    int // the oldest alerts, read last, are refused
		daemon bool
		newer  bool // a newer alert comes for the second poll
		wantAt int  // the poll after which the bad alerts are in the dead-letter file
	}{
		{"one, quiet, daemon", 1, true, false, quietDrains},
		{"one, quiet, separate runs", 1, false, false, quietDrains},
		{"two batches, quiet, daemon", 20, true, false, quietDrains},
		{"two batches, quiet, separate runs", 20, false, false, quietDrains},
		{"one, newer alert, daemon", 1, true, true, 2},
		{"two batches, newer alert, separate runs", 20, false, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, true, 30)
			bad := map[string]bool{}
			for i := 1; i <= tc.bad; i++ {
				bad[defendertest.AlertID(i)] = true
			}
			r.hec.Reject(func(ev []byte) bool {
				var a struct{ ID string }
				_ = json.Unmarshal(ev, &a)
				return bad[a.ID]
			})
			pl := r.poller(tc.daemon, func(c *hec.Config) { c.BatchCount = 10 })
			for poll := 1; poll <= quietDrains+1; poll++ {
				if poll == 2 && tc.newer {
					r.addNew(1)
				}
				st, err := pl.drain()
				if err != nil {
					t.Fatalf("poll %d: %v", poll, err)
				}
				dead := deadLetters(t, DeadLetterPath(r.dir, "tenant1"))
				cp := r.checkpoint()
				if poll < tc.wantAt {
					if dead != 0 || cp.Held == nil || cp.Window == nil || st.Held != tc.bad {
						t.Errorf("poll %d: dead-lettered %d, held %d, checkpoint %+v; want them held", poll, dead, st.Held, cp)
					}
				} else if dead != tc.bad || cp.Held != nil || cp.Window != nil {
					t.Errorf("poll %d: dead-lettered %d, checkpoint %+v; want them dead-lettered and the window done", poll, dead, cp)
				}
			}
			want := 30 - tc.bad
			if tc.newer {
				want++
			}
			// The rig has acks: the good alerts sharing a batch with the first refused one
			// were taken by a 400 that has no ack id, so they are sent once more for an ack
			// (hec, ca5092c); nothing else twice.
			prefix := (30 - tc.bad) % 10
			if hs := r.hec.Stats(); hs.Distinct != want || hs.Duplicates != prefix {
				t.Errorf("indexed %d (want %d), duplicates %d (want %d)", hs.Distinct, want, hs.Duplicates, prefix)
			}
		})
	}
}
