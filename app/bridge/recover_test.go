package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// timedSource hands on a fixed list of records, those inside the window and not delivered,
// from the one after Resume on; a record's Position is its number (from 1), as a real
// source's position names how far it has read.
type timedSource struct{ recs []Record }

func newTimedSource(n int, first time.Time) *timedSource {
	s := &timedSource{}
	for i := 1; i <= n; i++ {
		s.recs = append(s.recs, Record{ID: fmt.Sprint("r", i), Time: first.Add(time.Duration(i) * time.Millisecond), Data: []byte(`{}`)})
	}
	return s
}

func (s *timedSource) Read(ctx context.Context, w Window, emit func(Record, Position) error) (SourceStats, error) {
	st := SourceStats{Calls: 1}
	from := 0
	if len(w.Resume) > 0 {
		if err := json.Unmarshal(w.Resume, &from); err != nil {
			return st, fmt.Errorf("%w (%v)", ErrPosition, err)
		}
	}
	for i, r := range s.recs {
		if i+1 <= from || r.Time.Before(w.From) || !r.Time.Before(w.To) {
			continue
		}
		if w.Delivered(r.ID, r.Time) {
			st.Skipped++
			continue
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := emit(r, testPos(i+1)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// step is what the crashing sink reports of one batch of recBatch records: Pending once per
// ticket, then its final outcome ("ok", "refused": its last record refused, "refused all",
// or "": none before the crash).
type step struct {
	tickets int
	final   string
	saved   bool // wait for the checkpoint to hold the batch's tickets before the final outcome
}

const recBatch = 5

func ticket(batch, k int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"batch":%d,"send":%d}`, batch, k))
}

// crashSink reports what its steps say as each batch fills, and ends the drain on Flush as a
// crash would: nothing more is confirmed.
type crashSink struct {
	report func(Outcome)
	steps  []step
	store  *checkpoint.Store
	added  []string // ids of the records added
	tags   []*Tag
	stop   context.CancelFunc
}

func (s *crashSink) open(report func(Outcome)) Sink { s.report = report; return s }

func (s *crashSink) Add(_ context.Context, r Record, t *Tag) error {
	s.added, s.tags = append(s.added, r.ID), append(s.tags, t)
	if len(s.tags)%recBatch != 0 {
		return nil
	}
	b := len(s.tags) / recBatch // from 1
	st := s.steps[b-1]
	for k := 1; k <= st.tickets; k++ {
		s.report(Outcome{Last: t, N: recBatch, Pending: true, Ticket: ticket(b, k)})
	}
	if st.saved {
		s.awaitSaved(ticket(b, st.tickets))
	}
	switch st.final {
	case "ok":
		s.report(Outcome{Last: t, N: recBatch, Sent: uint64(b)})
	case "refused":
		s.report(Outcome{Last: t, N: recBatch, Sent: uint64(b), Rejected: []Rejected{{ID: r.ID, Index: recBatch - 1, Code: 6, Text: "Invalid data format", Refused: uint64(b)}}})
	case "refused all":
		var rej []Rejected
		for i := range recBatch {
			rej = append(rej, Rejected{ID: s.added[len(s.added)-recBatch+i], Index: i, Code: 6, Text: "Invalid data format", Refused: uint64(b)})
		}
		s.report(Outcome{Last: t, N: recBatch, Rejected: rej})
	}
	return nil
}

// awaitSaved waits until the checkpoint holds tk.
func (s *crashSink) awaitSaved(tk json.RawMessage) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, _ := s.store.Load()
		if st == nil {
			continue
		}
		for _, e := range st.Pending {
			for _, got := range e.Tickets {
				if string(got) == string(tk) {
					return
				}
			}
		}
	}
	panic("the checkpoint never held ticket " + string(tk))
}

func (s *crashSink) Flush(context.Context) error { s.stop(); return nil }

// resendSink confirms every record as it comes, one by one, and answers Recover as told.
type resendSink struct {
	report  func(Outcome)
	added   []string
	asked   []string // the tickets Recover was asked about
	recover func(tickets []json.RawMessage) ([]bool, error)
	// afterProved runs when Recover has told what it proved, before it returns.
	afterProved func()
}

func (s *resendSink) Add(_ context.Context, r Record, t *Tag) error {
	s.added = append(s.added, r.ID)
	s.report(Outcome{Last: t, N: 1})
	return nil
}

func (s *resendSink) Flush(context.Context) error { return nil }

// recoveringSink is a resendSink that is a Recoverer.
type recoveringSink struct{ *resendSink }

func (s recoveringSink) Recover(_ context.Context, tickets []json.RawMessage, proved func([]int)) ([]bool, error) {
	for _, t := range tickets {
		s.asked = append(s.asked, string(t))
	}
	ok, err := s.recover(tickets)
	if proved != nil {
		var ks []int
		for k, v := range ok {
			if v {
				ks = append(ks, k)
			}
		}
		if len(ks) > 0 {
			proved(ks)
		}
	}
	if s.afterProved != nil {
		s.afterProved()
	}
	return ok, err
}

func answerAll(ok bool) func([]json.RawMessage) ([]bool, error) {
	return func(ts []json.RawMessage) ([]bool, error) {
		out := make([]bool, len(ts))
		for i := range out {
			out[i] = ok
		}
		return out, nil
	}
}

// batchIDs lists the ids of the records of the given batches (from 1).
func batchIDs(batches ...int) []string {
	var ids []string
	for _, b := range batches {
		for i := (b-1)*recBatch + 1; i <= b*recBatch; i++ {
			ids = append(ids, fmt.Sprint("r", i))
		}
	}
	return ids
}

func recoverConfig(store *checkpoint.Store, dir string) Config {
	return Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
		Overlap: 10 * time.Minute, Grace: time.Millisecond, DeadLetter: DeadLetterPath(dir, "tenant1")}
}

// crashThenRestart runs a drain whose sink reports steps and then crashes, and a second drain
// by a new pump on the same checkpoint, with a sink that confirms everything it is sent and,
// unless recover is nil, is a Recoverer that answers with recover. It returns the checkpoint
// the crash left, the second sink and the second pump.
func crashThenRestart(t *testing.T, src Source, steps []step, recover func([]json.RawMessage) ([]bool, error)) (*checkpoint.State, *resendSink, *Pump) {
	t.Helper()
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	crash := &crashSink{steps: steps, stop: cancel, store: store}
	p1 := New(recoverConfig(store, dir), src, crash.open)
	if err := p1.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("the crashing drain ended with %v", err)
	}
	p1.Close()
	left, err := store.Load()
	if err != nil || left == nil {
		t.Fatalf("the crash left %+v, %v", left, err)
	}
	again := &resendSink{recover: recover}
	open := func(report func(Outcome)) Sink { again.report = report; return again }
	if recover != nil {
		open = func(report func(Outcome)) Sink { again.report = report; return recoveringSink{again} }
	}
	p2 := New(recoverConfig(store, dir), src, open)
	if err := p2.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	return left, again, p2
}

// A crash leaves batches that the destination took (Pending) or confirmed after the
// checkpoint's frontier. The next process asks the destination about them and sends again
// only what follows the run of confirmed ones: nothing confirmed before the crash comes
// twice when the destination confirms it, and nothing is lost whatever it answers.
func TestRecoverPendingAfterACrash(t *testing.T) {
	p, pc, ok, none := step{tickets: 1}, step{tickets: 1, final: "ok"}, step{final: "ok"}, step{}
	tests := []struct {
		name      string
		steps     []step // 8 batches of 5 records
		recover   func([]json.RawMessage) ([]bool, error)
		noRecover bool // the new sink is not a Recoverer
		// What the destination holds of the batches only taken: what Recover would say.
		indexed       func(batch int) bool
		wantAt        string   // the checkpoint's position after the crash; "": "5", after batch 1
		wantChain     int      // pending batches in the checkpoint the crash left
		wantAsked     []string // tickets asked about (nil: not asked)
		wantResent    []int    // batches sent again (all their records)
		wantRecovered int
		wantExtra     []string // records sent again beyond those batches
	}{
		{name: "every ticket confirmed", steps: []step{ok, p, pc, p, pc, p, p, p}, recover: answerAll(true), indexed: func(int) bool { return true },
			wantChain: 7, wantAsked: []string{`{"batch":2,"send":1}`, `{"batch":4,"send":1}`, `{"batch":6,"send":1}`, `{"batch":7,"send":1}`, `{"batch":8,"send":1}`},
			wantRecovered: 35},
		{name: "no ticket confirmed", steps: []step{ok, p, pc, p, pc, p, p, p}, recover: answerAll(false), indexed: func(int) bool { return false },
			wantChain: 7, wantAsked: []string{`{"batch":2,"send":1}`, `{"batch":4,"send":1}`, `{"batch":6,"send":1}`, `{"batch":7,"send":1}`, `{"batch":8,"send":1}`},
			wantResent: []int{2, 3, 4, 5, 6, 7, 8}},
		{name: "a gap: only the run before it", steps: []step{ok, p, p, none, p, pc, p, p}, recover: answerAll(true), indexed: func(int) bool { return true },
			wantChain: 2, wantAsked: []string{`{"batch":2,"send":1}`, `{"batch":3,"send":1}`}, wantResent: []int{4, 5, 6, 7, 8}, wantRecovered: 10},
		{name: "confirmed behind a pending batch: recovered without asking", steps: []step{ok, p, ok, none, none, none, none, none},
			recover: answerAll(true), indexed: func(int) bool { return true },
			wantChain: 2, wantAsked: []string{`{"batch":2,"send":1}`}, wantResent: []int{4, 5, 6, 7, 8}, wantRecovered: 10},
		{name: "sent twice, the second ticket confirmed", steps: []step{ok, {tickets: 2}, p, p, p, p, p, p},
			recover: func(ts []json.RawMessage) ([]bool, error) {
				out := make([]bool, len(ts))
				for i, tk := range ts {
					out[i] = string(tk) != `{"batch":2,"send":1}` && string(tk) != `{"batch":5,"send":1}`
				}
				return out, nil
			},
			indexed:   func(b int) bool { return b != 5 },
			wantChain: 7, wantAsked: []string{`{"batch":2,"send":1}`, `{"batch":2,"send":2}`, `{"batch":3,"send":1}`, `{"batch":4,"send":1}`,
				`{"batch":5,"send":1}`, `{"batch":6,"send":1}`, `{"batch":7,"send":1}`, `{"batch":8,"send":1}`},
			wantResent: []int{5, 6, 7, 8}, wantRecovered: 15},
		{name: "asking fails", steps: []step{ok, p, pc, p, p, p, p, p}, recover: func([]json.RawMessage) ([]bool, error) { return nil, errors.New("HEC is down") },
			indexed: func(int) bool { return true }, wantChain: 7, wantAsked: []string{`{"batch":2,"send":1}`, `{"batch":4,"send":1}`, `{"batch":5,"send":1}`,
				`{"batch":6,"send":1}`, `{"batch":7,"send":1}`, `{"batch":8,"send":1}`},
			wantResent: []int{2, 3, 4, 5, 6, 7, 8}},
		{name: "a sink that cannot be asked", steps: []step{ok, p, pc, p, p, p, p, p}, noRecover: true, indexed: func(int) bool { return true },
			wantChain: 7, wantResent: []int{2, 3, 4, 5, 6, 7, 8}},
		// Refused records are the frontier's business (held, dead-lettered): never recovered over.
		{name: "a refused record after the run", steps: []step{ok, p, {tickets: 1, final: "refused", saved: true}, p, p, p, p, p}, recover: answerAll(true),
			indexed: func(int) bool { return true }, wantChain: 1, wantAsked: []string{`{"batch":2,"send":1}`}, wantResent: []int{3, 4, 5, 6, 7, 8}, wantRecovered: 5},
		{name: "a batch refused whole after the run", steps: []step{ok, p, {final: "refused all"}, p, p, p, p, p}, recover: answerAll(true),
			indexed: func(int) bool { return true }, wantChain: 1, wantAsked: []string{`{"batch":2,"send":1}`}, wantResent: []int{3, 4, 5, 6, 7, 8}, wantRecovered: 5},
		{name: "taken, then refused whole, at the frontier", steps: []step{ok, {tickets: 1, final: "refused all", saved: true}, p, p, p, p, p, p}, recover: answerAll(true),
			indexed: func(int) bool { return true }, wantChain: 0, wantResent: []int{2, 3, 4, 5, 6, 7, 8}},
		{name: "taken, then a record refused, at the frontier", steps: []step{ok, {tickets: 1, final: "refused", saved: true}, p, p, p, p, p, p}, recover: answerAll(true),
			indexed: func(int) bool { return true }, wantAt: "9", wantChain: 0, wantResent: []int{3, 4, 5, 6, 7, 8}, wantExtra: []string{"r10"}},
		{name: "a refused record held at the frontier", steps: []step{ok, {final: "refused"}, p, p, p, p, p, p}, recover: answerAll(true),
			indexed: func(int) bool { return true }, wantAt: "9", wantChain: 0, wantResent: []int{3, 4, 5, 6, 7, 8}, wantExtra: []string{"r10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newTimedSource(8*recBatch, time.Now().Add(-5*time.Minute))
			rec := tt.recover
			if tt.noRecover {
				rec = nil
			}
			left, again, p2 := crashThenRestart(t, src, tt.steps, rec)
			if got := len(left.Pending); got != tt.wantChain {
				t.Errorf("the crash left %d pending batches, want %d: %+v", got, tt.wantChain, left.Pending)
			}
			// A pending batch never moves the frontier: the checkpoint stays after batch 1.
			wantAt := cmp.Or(tt.wantAt, "5")
			if left.Window == nil || string(left.Window.Position) != wantAt {
				t.Errorf("the crash left the window %+v, want it at record %s", left.Window, wantAt)
			}
			if !slices.Equal(again.asked, tt.wantAsked) {
				t.Errorf("asked about\n %v\nwant\n %v", again.asked, tt.wantAsked)
			}
			want := append(batchIDs(tt.wantResent...), tt.wantExtra...)
			slices.SortFunc(want, func(a, b string) int { return recordNumber(a) - recordNumber(b) })
			if !slices.Equal(again.added, want) {
				t.Errorf("sent again\n %v\nwant\n %v", again.added, want)
			}
			if got := p2.Stats().Recovered; got != tt.wantRecovered {
				t.Errorf("recovered %d alerts, want %d", got, tt.wantRecovered)
			}
			// Nothing lost: every record was confirmed before the crash, or taken by the
			// destination and kept (what Recover says), or sent again.
			resent := map[string]bool{}
			for _, id := range again.added {
				resent[id] = true
			}
			for b, st := range tt.steps {
				for i, id := range batchIDs(b + 1) {
					held := st.final == "ok" || (st.final == "refused" && i < recBatch-1) || (st.tickets > 0 && st.final == "" && tt.indexed(b+1))
					if !held && !resent[id] {
						t.Errorf("record %s (batch %d) was lost", id, b+1)
					}
				}
			}
		})
	}
}

func recordNumber(id string) int {
	n, _ := strconv.Atoi(id[1:])
	return n
}

// Batches recovered after a restart count as delivered for the overlap: their keys join the
// checkpoint's Delivered, so the next window, which reads the overlap again, skips them
// instead of sending them a second time.
func TestRecoveredKeysCoverTheOverlap(t *testing.T) {
	p, ok := step{tickets: 1}, step{final: "ok"}
	src := newTimedSource(8*recBatch, time.Now().Add(-5*time.Minute)) // all inside the overlap
	_, again, p2 := crashThenRestart(t, src, []step{ok, p, p, p, p, p, p, p}, answerAll(true))
	st := p2.Stats()
	if len(again.added) != 0 || st.Recovered != 35 || st.Skipped != 40 {
		t.Errorf("sent again %v, recovered %d, skipped as delivered %d; want none sent, 35 recovered, all 40 skipped",
			again.added, st.Recovered, st.Skipped)
	}
	cp, err := p2.cfg.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	delivered := map[string]bool{}
	for _, k := range cp.Delivered {
		delivered[k.ID] = true
	}
	for _, r := range src.recs {
		if !delivered[r.ID] {
			t.Errorf("%s is not in the checkpoint's delivered versions", r.ID)
		}
	}
	if cp.Window != nil || len(cp.Pending) != 0 {
		t.Errorf("checkpoint %+v, want the window committed and nothing pending", cp)
	}
}

// HEC answers an ack id true only once: what a recovery proves is saved as it comes, so that
// a crash during the recovery (here: asking fails after HEC answered) does not lose it. The
// checkpoint then holds the batches as confirmed, and the next process does not send them.
func TestRecoveryProofsSavedAsTheyCome(t *testing.T) {
	p := step{tickets: 1}
	src := newTimedSource(8*recBatch, time.Now().Add(-5*time.Minute))
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	crash := &crashSink{steps: []step{{final: "ok"}, p, p, p, p, p, p, p}, stop: cancel, store: store}
	p1 := New(recoverConfig(store, dir), src, crash.open)
	if err := p1.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("the crashing drain ended with %v", err)
	}
	p1.Close()
	var onDisk *checkpoint.State
	again := &resendSink{}
	again.recover = func(ts []json.RawMessage) ([]bool, error) {
		ok := make([]bool, len(ts))
		for i := range ok {
			ok[i] = true
		}
		return ok, errors.New("the process died while asking")
	}
	again.afterProved = func() { onDisk, _ = store.Load() }
	p2 := New(recoverConfig(store, dir), src, func(report func(Outcome)) Sink { again.report = report; return recoveringSink{again} })
	if err := p2.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if onDisk == nil {
		t.Fatal("nothing on disk")
	}
	confirmed := 0
	for _, e := range onDisk.Pending {
		if e.Confirmed {
			confirmed++
		}
	}
	if len(onDisk.Pending) != 7 || confirmed != 7 {
		t.Errorf("while asking, the checkpoint held %d pending batches, %d confirmed: want the 7 proved ones saved as confirmed", len(onDisk.Pending), confirmed)
	}
}
