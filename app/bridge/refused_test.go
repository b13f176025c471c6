package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/hec"
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
	if !errors.Is(err, ErrRefusedAll) {
		t.Fatalf("err = %v, want ErrRefusedAll", err)
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

// The pump's bookkeeping, batch by batch: refused batches are held until an indexed alert
// follows them (rare bad alerts: dead-lettered), or until they prove systematic (stop: nothing
// dead-lettered, the frontier before them).
func TestRefusedBatchesHeldBack(t *testing.T) {
	type batch struct {
		n, refused int  // records, and how many of them Splunk refused: the last ones
		first      bool // the first ones instead
	}
	tests := []struct {
		name         string
		give         []batch
		order        []int // arrival order of the outcomes; nil: in order
		end          bool  // the window ends after these
		wantFrontier uint64
		wantDead     int
		wantStop     bool
	}{
		{name: "all indexed", give: []batch{{10, 0, false}, {10, 0, false}}, wantFrontier: 20},
		{name: "a rare bad alert", give: []batch{{10, 1, true}, {10, 0, false}}, wantFrontier: 20, wantDead: 1},
		{name: "a rare bad alert, the batch's last", give: []batch{{10, 1, false}, {10, 0, false}}, wantFrontier: 20, wantDead: 1},
		{name: "a rare bad alert, the batch's last, held until it is clear", give: []batch{{10, 1, false}}, wantFrontier: 0},
		{name: "a rare bad alert, the window's last", give: []batch{{10, 1, false}}, end: true, wantFrontier: 10, wantDead: 1},
		{name: "the run starts part-way through a batch", give: []batch{{10, 0, false}, {10, 7, false}, {20, 20, false}, {20, 20, false}, {20, 20, false}}, wantFrontier: 10, wantStop: true},
		{name: "a bad alert before the run", give: []batch{{10, 0, false}, {10, 1, true}, {20, 20, false}, {20, 20, false}, {20, 20, false}}, wantFrontier: 20, wantDead: 1, wantStop: true},
		{name: "one batch refused whole, then indexed ones", give: []batch{{10, 0, false}, {10, 10, false}, {10, 0, false}}, wantFrontier: 30, wantDead: 10},
		{name: "refused whole, held until it is clear", give: []batch{{10, 0, false}, {10, 10, false}, {10, 10, false}}, wantFrontier: 10},
		{name: "refused at the end of the window", give: []batch{{10, 0, false}, {10, 10, false}, {10, 10, false}}, end: true, wantFrontier: 30, wantDead: 20},
		{name: "three batches but few alerts", give: []batch{{5, 5, false}, {5, 5, false}, {5, 5, false}, {5, 0, false}}, wantFrontier: 20, wantDead: 15},
		{name: "many alerts but two batches", give: []batch{{40, 40, false}, {40, 40, false}, {1, 0, false}}, wantFrontier: 81, wantDead: 80},
		{name: "systematic", give: []batch{{10, 0, false}, {20, 20, false}, {20, 20, false}, {20, 20, false}, {10, 0, false}}, wantFrontier: 10, wantStop: true},
		{name: "systematic, at the end of the window", give: []batch{{10, 0, false}, {20, 20, false}, {20, 20, false}, {20, 20, false}}, end: true, wantFrontier: 10, wantStop: true},
		{name: "systematic, outcomes out of order", give: []batch{{10, 0, false}, {20, 20, false}, {20, 20, false}, {20, 20, false}, {10, 0, false}}, order: []int{4, 3, 1, 2, 0}, wantFrontier: 10, wantStop: true},
		{name: "partly refused batches are not a run", give: []batch{{20, 20, false}, {20, 19, false}, {20, 20, false}, {20, 20, false}}, end: true, wantFrontier: 80, wantDead: 79},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, dir := newBarePump(t)
			var outs []hec.Outcome
			seq := uint64(0)
			for i, b := range tt.give {
				var rej []hec.Rejected
				for k := 0; k < b.refused; k++ {
					at := b.n - b.refused + k
					if b.first {
						at = k
					}
					rej = append(rej, hec.Rejected{ID: fmt.Sprintf("b%d-%d", i, at), Index: at, Envelope: []byte(`{"event":{}}`), Code: 6, Text: "Invalid data format"})
				}
				seq += uint64(b.n)
				bt := &hec.Batch{Tag: &tag{gen: p.gen, seq: seq}}
				outs = append(outs, hec.Outcome{Batch: batchOf(bt, b.n), Rejected: rej})
			}
			order := tt.order
			if order == nil {
				for i := range outs {
					order = append(order, i)
				}
			}
			for _, i := range order {
				p.Outcome(outs[i])
			}
			p.mu.Lock()
			if tt.end {
				p.endLocked()
			}
			frontier, failed := p.frontier, p.failed
			for p.saving {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if frontier != tt.wantFrontier {
				t.Errorf("frontier %d, want %d", frontier, tt.wantFrontier)
			}
			if got := errors.Is(failed, ErrRefusedAll); got != tt.wantStop {
				t.Errorf("stopped: %v (%v), want %v", got, failed, tt.wantStop)
			}
			if got := deadLetters(t, DeadLetterPath(dir, "tenant1")); got != tt.wantDead {
				t.Errorf("%d alerts dead-lettered, want %d", got, tt.wantDead)
			}
		})
	}
}

// batchOf fills b with n records.
func batchOf(b *hec.Batch, n int) *hec.Batch {
	enc := hec.NewEncoder("h", "s", "st", "")
	for k := 0; k < n; k++ {
		enc.Append(b, hec.Record{Time: time.Unix(0, 0), Event: []byte(`{}`), ID: fmt.Sprint(k)})
	}
	return b
}

func newBarePump(t *testing.T) (*Pump, string) {
	t.Helper()
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p := &Pump{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now, DeadLetter: DeadLetterPath(dir, "tenant1")}
	p.cond = newCond(p)
	p.gen = 1
	p.confirmed, p.tags = map[uint64]done{}, map[uint64]*tag{}
	p.win = &checkpoint.Window{From: time.Now().Add(-time.Hour), To: time.Now()}
	return p, dir
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
