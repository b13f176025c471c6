package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// listSource hands on n records on every read, inside the window, each with a position
// that names it.
type listSource struct{ n int }

func (s listSource) Read(ctx context.Context, w Window, emit func(Record, Position) error) (SourceStats, error) {
	for i := 1; i <= s.n; i++ {
		if err := ctx.Err(); err != nil {
			return SourceStats{Calls: 1}, err
		}
		r := Record{ID: fmt.Sprint("a", i), Time: w.From.Add(time.Duration(i) * time.Millisecond), Data: []byte(`{}`)}
		if err := emit(r, testPos(i)); err != nil {
			return SourceStats{Calls: 1}, err
		}
	}
	return SourceStats{Calls: 1}, nil
}

type testPos int

func (p testPos) MarshalJSON() ([]byte, error) { return []byte(strconv.Itoa(int(p))), nil }

// scripted is a Sink whose test decides what it reports, and when.
type scripted struct {
	report  func(Outcome)
	onAdd   func(s *scripted, t *Tag) error
	onFlush func(s *scripted) error
	tags    []*Tag // the tags of the records added
}

func (s *scripted) open(report func(Outcome)) Sink { s.report = report; return s }

func (s *scripted) Add(_ context.Context, _ Record, t *Tag) error {
	s.tags = append(s.tags, t)
	if s.onAdd != nil {
		return s.onAdd(s, t)
	}
	return nil
}

func (s *scripted) Flush(context.Context) error {
	if s.onFlush != nil {
		return s.onFlush(s)
	}
	return nil
}

// An outcome that arrives after its window was abandoned must not move a later window's
// frontier: record numbers start over with every window. The first drain fails with records
// 3 to 5 still in the sink; the sink confirms them as the next drain hands on its first
// record, which is record 1 again.
func TestStaleOutcomeIgnored(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sink := &scripted{}
	sink.onFlush = func(s *scripted) error {
		s.report(Outcome{Last: s.tags[1], N: 2, Err: errors.New("HEC is down")})
		return nil
	}
	p := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
		DeadLetter: DeadLetterPath(dir, "tenant1")}, listSource{n: 5}, sink.open)
	if err := p.Drain(context.Background()); err == nil {
		t.Fatal("the first drain did not fail")
	}
	stale := sink.tags[len(sink.tags)-1]
	sink.tags, sink.onFlush = nil, nil
	sink.onAdd = func(s *scripted, t *Tag) error {
		if len(s.tags) == 1 {
			s.report(Outcome{Last: stale, N: 3}) // the first drain's records 3 to 5
		}
		s.report(Outcome{Last: t, N: 1})
		return nil
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Confirmed != 5 || st.Windows != 1 {
		t.Errorf("confirmed %d in %d windows, want the second drain's 5 in 1", st.Confirmed, st.Windows)
	}
}

// A window's checkpoint holds the Position of the frontier's record, as the Source's JSON,
// and hands it back to the Source on a resume; a position the Source cannot read is an error
// that names the checkpoint file.
func TestPositionSavedAndResumed(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Records 1 to 3 are confirmed, record 4 is not: the checkpoint stays at 3.
	sink := &scripted{onFlush: func(s *scripted) error {
		s.report(Outcome{Last: s.tags[2], N: 3})
		s.report(Outcome{Last: s.tags[3], N: 1, Err: errors.New("HEC is down")})
		return nil
	}}
	p := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
		DeadLetter: DeadLetterPath(dir, "tenant1")}, listSource{n: 4}, sink.open)
	if err := p.Drain(context.Background()); err == nil {
		t.Fatal("the drain did not fail")
	}
	st, err := store.Load()
	if err != nil || st == nil || st.Window == nil || string(st.Window.Position) != "3" {
		t.Fatalf("checkpoint %+v (%v), want a window at position 3", st, err)
	}
	// The next drain resumes the window from that position.
	var resumed []string
	src := sourceFunc(func(_ context.Context, w Window, _ func(Record, Position) error) (SourceStats, error) {
		resumed = append(resumed, string(w.Resume))
		if string(w.Resume) == "3" {
			return SourceStats{}, fmt.Errorf("%w (not a position)", ErrPosition)
		}
		return SourceStats{}, nil
	})
	p2 := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
		DeadLetter: DeadLetterPath(dir, "tenant1")}, src, (&scripted{}).open)
	err = p2.Drain(context.Background())
	want := "checkpoint " + store.Path() + ": the saved position cannot be read (not a position): move the file away to start over"
	if len(resumed) != 1 || resumed[0] != "3" || err == nil || err.Error() != want {
		t.Errorf("resumed from %q, err %v; want from \"3\" and %q", resumed, err, want)
	}
}

type sourceFunc func(context.Context, Window, func(Record, Position) error) (SourceStats, error)

func (f sourceFunc) Read(ctx context.Context, w Window, emit func(Record, Position) error) (SourceStats, error) {
	return f(ctx, w, emit)
}

// When the dead-letter file cannot take a batch's refused record, the checkpoint stays
// before that batch, also when a later batch is confirmed before the window ends: the
// refused record is neither in Splunk nor in the file, and the next run must send it again.
func TestDeadLetterFailureHoldsTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sink := &scripted{onFlush: func(s *scripted) error {
		s.report(Outcome{Last: s.tags[9], N: 10, Sent: 2, Rejected: []Rejected{{ID: "a3", Index: 2, Code: 6, Refused: 1}}})
		s.report(Outcome{Last: s.tags[19], N: 10, Sent: 3})
		return nil
	}}
	p := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
		DeadLetter: t.TempDir()}, listSource{n: 20}, sink.open) // a folder: it cannot be opened as a file
	err = p.Drain(context.Background())
	if err == nil || !strings.Contains(err.Error(), "dead-letter file") {
		t.Fatalf("err = %v, want the dead-letter file's failure", err)
	}
	if st, err := store.Load(); err != nil || (st != nil && (st.Window == nil || len(st.Window.Position) > 0)) {
		t.Errorf("checkpoint %+v (%v): it moved past the batch whose refused record was not dead-lettered", st, err)
	}
}

// An outcome that arrives after Drain gave up waiting (HEC confirming during its Close) is
// still committed, and Close returns only once that save is on disk, so the checkpoint is
// never released while it is being written.
func TestCloseWaitsForALateSave(t *testing.T) {
	for range 20 {
		dir := t.TempDir()
		store, err := checkpoint.Open(dir, "tenant1")
		if err != nil {
			t.Fatal(err)
		}
		sink := &scripted{} // confirms nothing while the pump waits
		p := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
			Grace: time.Millisecond}, listSource{n: 20}, sink.open)
		ctx, cancel := context.WithCancel(context.Background())
		sink.onFlush = func(s *scripted) error { cancel(); return nil }
		_ = p.Drain(ctx)
		if len(sink.tags) != 20 {
			t.Fatalf("the sink got %d records, want 20", len(sink.tags))
		}
		sink.report(Outcome{Last: sink.tags[19], N: 20}) // late: the drain has returned
		p.Close()
		sink.report(Outcome{Last: sink.tags[19], N: 20}) // after Close: ignored
		st, err := store.Load()
		store.Close()
		if err != nil || st == nil || p.Stats().Confirmed != 20 {
			t.Fatalf("after Close: state %+v (%v), confirmed %d; want the late outcome committed", st, err, p.Stats().Confirmed)
		}
	}
}

// A batch HEC took whole lets go of its records' positions but the last (a long ack wait
// holds hundreds of bytes for each otherwise). Should a request that sends it again after a
// lost ack refuse its end after all, the frontier stops at a record without a position: the
// checkpoint keeps the earlier one, so the next run reads from there and loses nothing.
func TestTakenBatchesLetTheirPositionsGo(t *testing.T) {
	dir := t.TempDir()
	store, err := checkpoint.Open(dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var kept []int
	sink := &scripted{onFlush: func(s *scripted) error {
		s.report(Outcome{Last: s.tags[4], N: 5, Sent: 1})       // 1 … 5 indexed
		s.report(Outcome{Last: s.tags[14], N: 10, Taken: true}) // 6 … 15 taken whole
		for i, tg := range s.tags[5:15] {
			if tg.pos != nil {
				kept = append(kept, i+6)
			}
		}
		// Its ack lost, it is sent again, and that request refuses 14 and 15.
		s.report(Outcome{Last: s.tags[14], N: 10, Sent: 3, Rejected: []Rejected{
			{ID: "a14", Index: 8, Code: 6, Refused: 2}, {ID: "a15", Index: 9, Code: 6, Refused: 2}}})
		s.report(Outcome{Last: s.tags[19], N: 5, Err: errors.New("HEC is down")})
		return nil
	}}
	p := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Start: time.Hour,
		DeadLetter: DeadLetterPath(dir, "tenant1")}, listSource{n: 20}, sink.open)
	if err := p.Drain(context.Background()); err == nil {
		t.Fatal("the drain did not fail")
	}
	if len(kept) != 1 || kept[0] != 15 {
		t.Errorf("records of the taken batch that kept their position: %v, want only its last, 15", kept)
	}
	st, err := store.Load()
	if err != nil || st == nil || st.Window == nil || string(st.Window.Position) != "5" {
		t.Fatalf("checkpoint %+v (%v), want the window at position 5, the last one known before the refused end", st, err)
	}
}
