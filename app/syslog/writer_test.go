package syslog

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
)

// reports collects a Writer's reports and checks they answer for every message, in order,
// once.
type reports struct {
	mu   sync.Mutex
	all  []Report
	next int // the tag (an int) the next report's first message must have
}

func (r *reports) add(t *testing.T) func(Report) {
	return func(rep Report) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if last, ok := rep.Last.(int); !ok || last != r.next+rep.N-1 {
			t.Errorf("report of %d up to %v follows tag %d", rep.N, rep.Last, r.next-1)
		}
		r.next += rep.N
		r.all = append(r.all, rep)
	}
}

func (r *reports) snapshot() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Report(nil), r.all...)
}

// confirmed is how many messages were reported confirmed, and the total Resent.
func (r *reports) confirmed() (n, resent int) {
	for _, rep := range r.snapshot() {
		if rep.Err == nil {
			n += rep.N
		}
		resent += rep.Resent
	}
	return n, resent
}

func newWriter(t *testing.T, o Options, r *reports) *Writer {
	t.Helper()
	if o.Hostname == "" {
		o.Hostname = "test-host"
	}
	w, err := New(o, r.add(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Close(ctx)
	})
	return w
}

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)

// msg is message number i: its tag is i, its body starts with "seq=i ".
func msg(i int, body string) Message {
	return Message{Time: t0.Add(time.Duration(i) * time.Millisecond), MsgID: "detection", Body: []byte("seq=" + strconv.Itoa(i) + " " + body), Tag: i}
}

func write(t *testing.T, w *Writer, from, to int, body string) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := w.Write(context.Background(), msg(i, body)); err != nil {
			t.Fatal(err)
		}
	}
}

func flush(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func closeWriter(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// seqs counts how often each sequence number arrived.
func seqs(t *testing.T, msgs []*rfc5424.SyslogMessage) map[int]int {
	t.Helper()
	got := map[int]int{}
	for _, m := range msgs {
		f := strings.Fields(*m.Message)
		n, err := strconv.Atoi(strings.TrimPrefix(f[0], "seq="))
		if err != nil {
			t.Fatalf("message %q", *m.Message)
		}
		got[n]++
	}
	return got
}

// count counts the messages from 0 to n-1 that did not arrive, and the extra copies.
func count(got map[int]int, n int) (missing, dups int) {
	for i := range n {
		if got[i] == 0 {
			missing++
		}
		dups += max(got[i]-1, 0)
	}
	return missing, dups
}

// checkAll fails unless every message from 0 to n-1 arrived, and returns the duplicates.
func checkAll(t *testing.T, got map[int]int, n int) (dups int) {
	t.Helper()
	missing, dups := count(got, n)
	if missing > 0 || len(got) != n {
		t.Errorf("%d of %d messages missing (%d distinct arrived)", missing, n, len(got))
	}
	return dups
}

func TestDeliversOverTCP(t *testing.T) {
	for _, f := range []Framing{OctetCounting, LF} {
		t.Run(f.String(), func(t *testing.T) {
			rc := newReceiver(t, "tcp", f, nil)
			var r reports
			o := Options{URL: rc.url("tcp"), Framing: f, Hostname: "h1.example"}
			w := newWriter(t, o, &r)
			const n = 2000
			write(t, w, 0, n, "pipes|back\\slash=eq^caret é 日本 "+strings.Repeat("y", 300))
			flush(t, w)
			if got, _ := r.confirmed(); got != n {
				t.Fatalf("%d confirmed, want %d", got, n)
			}
			closeWriter(t, w) // go-syslog's LF parser hands on a frame when the next one starts, or at the end
			msgs := rc.waitFor(n, 5*time.Second)
			if dups := checkAll(t, seqs(t, msgs), n); dups != 0 {
				t.Errorf("%d duplicates on a healthy connection", dups)
			}
			checkParsed(t, msgs[7], &w.o, msg(7, "pipes|back\\slash=eq^caret é 日本 "+strings.Repeat("y", 300)))
			if st := w.Stats(); st.Written != n || st.Connects != 1 || st.Resent != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// Linger: what was written goes out and is reported without Flush (a bridge.Sink must
// deliver what it holds without being given more).
func TestLingerFlushesByItself(t *testing.T) {
	rc := newReceiver(t, "tcp", OctetCounting, nil)
	var r reports
	w := newWriter(t, Options{URL: rc.url("tcp"), Linger: 20 * time.Millisecond}, &r)
	write(t, w, 0, 3, "x")
	rc.waitFor(3, 5*time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := r.confirmed(); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports %+v", r.snapshot())
		}
	}
}

func TestWriterRejects(t *testing.T) {
	rc := newReceiver(t, "tcp", LF, nil)
	var r reports
	w := newWriter(t, Options{URL: rc.url("tcp"), Framing: LF, MaxSize: 600}, &r)
	late := msg(3, "year 10000")
	late.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	badID := msg(4, "msgid with a space")
	badID.MsgID = "two words"
	for _, m := range []Message{msg(0, "ok"), msg(1, "line\nfeed"), msg(2, strings.Repeat("z", 600)), late, badID, msg(5, "ok")} {
		if err := w.Write(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	closeWriter(t, w)
	reps := r.snapshot()
	if len(reps) != 1 || reps[0].N != 6 || len(reps[0].Rejected) != 4 {
		t.Fatalf("reports %+v", reps)
	}
	want := []struct {
		index int
		err   error
	}{{1, ErrNewline}, {2, ErrTooBig}, {3, ErrHeader}, {4, ErrHeader}}
	for i, rej := range reps[0].Rejected {
		if rej.Index != want[i].index || rej.Tag != want[i].index || !errors.Is(rej.Err, want[i].err) {
			t.Errorf("rejected %d: index %d tag %v err %v, want %d %v", i, rej.Index, rej.Tag, rej.Err, want[i].index, want[i].err)
		}
	}
	if m := string(reps[0].Rejected[1].Message); !strings.HasPrefix(m, "<165>1 2026-") || !strings.HasSuffix(m, "zzz") {
		t.Errorf("the too-big message is not the one that would have been sent: %.60q", m)
	}
	got := seqs(t, rc.waitFor(2, 5*time.Second))
	if len(got) != 2 || got[0] != 1 || got[5] != 1 {
		t.Errorf("arrived %v, want 0 and 5", got)
	}
}

// UDP: one message per datagram; an oversize one is shortened by the caller, or rejected.
func TestUDPOversize(t *testing.T) {
	rc := newReceiver(t, "udp", OctetCounting, nil)
	var r reports
	var rooms []int
	o := Options{URL: rc.url("udp"), MaxSize: 600, Shorten: func(m Message, room int) ([]byte, bool) {
		rooms = append(rooms, room)
		switch {
		case strings.Contains(string(m.Body), "keep"):
			return nil, false
		case strings.Contains(string(m.Body), "sloppy"):
			return m.Body[:room+1], true // still too long
		}
		return append(m.Body[:room-5:room-5], "[cut]"...), true
	}}
	w := newWriter(t, o, &r)
	big := strings.Repeat("w", 1000)
	for _, m := range []Message{msg(0, "small"), msg(1, "cut "+big), msg(2, "keep "+big), msg(3, "sloppy "+big), msg(4, "small")} {
		if err := w.Write(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, w)
	msgs := rc.waitFor(3, 5*time.Second)
	got := seqs(t, msgs)
	if len(got) != 3 || got[0] != 1 || got[1] != 1 || got[4] != 1 {
		t.Fatalf("arrived %v, want 0, 1 (shortened) and 4", got)
	}
	for _, m := range msgs {
		if strings.HasPrefix(*m.Message, "seq=1 ") {
			if raw := w.h.appendMessage(nil, &Message{Time: *m.Timestamp, MsgID: *m.MsgID, Body: []byte(*m.Message)}); len(raw) != 600 || !strings.HasSuffix(*m.Message, "[cut]") {
				t.Errorf("shortened message is %d bytes, ends %q", len(raw), (*m.Message)[len(*m.Message)-8:])
			}
		}
	}
	reps := r.snapshot()
	if len(reps) != 1 || reps[0].N != 5 || len(reps[0].Rejected) != 2 || reps[0].Rejected[0].Index != 2 || reps[0].Rejected[1].Index != 3 {
		t.Fatalf("reports %+v", reps)
	}
	if st := w.Stats(); st.Shortened != 1 || st.Rejected != 2 || st.Written != 3 {
		t.Errorf("stats %+v", st)
	}
	head := w.h.headLen(&Message{Time: t0, MsgID: "detection"})
	if len(rooms) != 3 || rooms[0] != 600-head {
		t.Errorf("rooms %v, want 3 × %d", rooms, 600-head)
	}
}

// A receiver that is down at first: the writer retries with backoff and delivers once it is up.
func TestReceiverDownAtFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var r reports
	var mu sync.Mutex
	var retries []error
	o := Options{URL: "tcp://" + addr, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		OnRetry: func(err error, d time.Duration) { mu.Lock(); retries = append(retries, err); mu.Unlock() }}
	w := newWriter(t, o, &r)
	write(t, w, 0, 10, "early")
	done := make(chan error, 1)
	go func() { done <- w.Flush(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Flush returned %v with the receiver down", err)
	default:
	}
	rc := &receiver{t: t, network: "tcp", addr: addr, conns: map[net.Conn]bool{}}
	rc.start()
	t.Cleanup(func() { rc.stop(); rc.wg.Wait() })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w)
	checkAll(t, seqs(t, rc.waitFor(10, 5*time.Second)), 10)
	mu.Lock()
	defer mu.Unlock()
	st := w.Stats()
	if len(retries) < 2 || st.Failures != int64(len(retries)) || st.Connects != 1 {
		t.Errorf("%d retries heard, stats %+v", len(retries), st)
	}
	var op *net.OpError
	if !errors.As(retries[0], &op) {
		t.Errorf("retry error %v is not the dial's", retries[0])
	}
	if n, _ := r.confirmed(); n != 10 {
		t.Errorf("%d confirmed", n)
	}
}

// A context ends the wait: the messages taken are reported failed and forgotten, and the
// writer goes on once the receiver is back.
func TestFlushContextEnds(t *testing.T) {
	rc := newReceiver(t, "tcp", OctetCounting, nil)
	rc.stop()
	var r reports
	w := newWriter(t, Options{URL: rc.url("tcp"), BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, &r)
	write(t, w, 0, 5, "doomed")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if err := w.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush: %v", err)
	}
	reps := r.snapshot()
	if len(reps) != 1 || reps[0].N != 5 || reps[0].Last != 4 || !errors.Is(reps[0].Err, context.DeadlineExceeded) {
		t.Fatalf("reports %+v", reps)
	}
	rc.start()
	write(t, w, 5, 8, "later")
	flush(t, w)
	got := seqs(t, rc.waitFor(3, 5*time.Second))
	if len(got) != 3 || got[5] != 1 || got[7] != 1 {
		t.Errorf("arrived %v, want 5 to 7 (the failed ones were forgotten)", got)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), msg(9, "")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

// A full re-send buffer makes writing wait for its oldest message to age out, rather than
// forget a message still inside the window.
func TestKeepFullWaits(t *testing.T) {
	rc := newReceiver(t, "tcp", OctetCounting, nil)
	var r reports
	const resend = 100 * time.Millisecond
	w := newWriter(t, Options{URL: rc.url("tcp"), MaxSize: 600, Keep: 2000, Resend: resend}, &r)
	start := time.Now()
	for i := range 12 {
		write(t, w, i, i+1, strings.Repeat("k", 400))
		flush(t, w)
		if st := w.Stats(); st.KeptBytes > 2000 {
			t.Fatalf("kept %d bytes, Keep 2000", st.KeptBytes)
		}
	}
	st := w.Stats()
	// Four messages fit; each later one waits until the one written `resend` earlier leaves.
	if took := time.Since(start); st.RoomWaits < 2 || took < 2*resend {
		t.Errorf("took %v with %d waits", took, st.RoomWaits)
	}
	checkAll(t, seqs(t, rc.waitFor(12, 5*time.Second)), 12)
}
