package syslog

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A receiver that stops reading, then drops its connection with a reset, loses what its
// kernel held: messages the writer had already reported confirmed. Re-sending what was
// written in the Resend window before the break delivers every one of them at least once;
// the control run (a window too short to matter) shows the loss is real.
func TestResendAfterDrop(t *testing.T) {
	tests := []struct {
		name    string
		scheme  string
		framing Framing
		resend  time.Duration
		lossy   bool
	}{
		{"tcp octet counting", "tcp", OctetCounting, time.Minute, false},
		{"tcp lf", "tcp", LF, time.Minute, false},
		{"tls", "tls", OctetCounting, time.Minute, false},
		{"control: no window", "tcp", OctetCounting, time.Nanosecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var server *tls.Config
			o := Options{Framing: tt.framing, Resend: tt.resend, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
			if tt.scheme == "tls" {
				server = testTLS(t, &o)
			}
			rc := newReceiver(t, "tcp", tt.framing, server)
			const k, m, n = 50, 200, 400
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			rc.hold = func(got int) {
				if got == k {
					once.Do(func() { close(held) })
					<-release
				}
			}
			var r reports
			o.URL = rc.url(tt.scheme)
			w := newWriter(t, o, &r)
			write(t, w, 0, k+1, "before") // LF: go-syslog hands on frame k when frame k+1 starts
			flush(t, w)
			<-held // the receiver reads no more
			write(t, w, k+1, k+m, strings.Repeat("in flight ", 5))
			flush(t, w) // confirmed: the kernel took them
			if c, _ := r.confirmed(); c != k+m {
				t.Fatalf("%d confirmed, want %d", c, k+m)
			}
			rc.drop()
			close(release)
			write(t, w, k+m, n, "after")
			closeWriter(t, w)

			got := seqs(t, rc.settled())
			missing, dups := count(got, n)
			st := w.Stats()
			_, resent := r.confirmed()
			t.Logf("missing %d, duplicates %d, resent %d", missing, dups, st.Resent)
			if tt.lossy {
				if missing == 0 {
					t.Fatal("the control run lost nothing: the receiver's drop proves nothing")
				}
				return
			}
			if missing > 0 {
				t.Fatalf("%d of %d messages lost", missing, n)
			}
			if st.Resent < m || int64(resent) != st.Resent || int64(dups) > st.Resent || st.Connects < 2 {
				t.Errorf("resent %d (reported %d), duplicates %d, stats %+v: want at least the %d in flight, every duplicate counted", st.Resent, resent, dups, st, m)
			}
		})
	}
}

// A break while the writer is idle is noticed when it happens (the connection is watched),
// and the window is counted back from it, not from the next write: with the receiver down
// for an hour, what was written just before the break is re-sent as soon as it is back,
// with no Write or Flush, and nothing older is.
func TestBreakNoticedWhileIdle(t *testing.T) {
	rc := newReceiver(t, "tcp", OctetCounting, nil)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var r reports
	w := newWriter(t, Options{URL: rc.url("tcp"), Now: clock, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, &r)
	write(t, w, 0, 10, "old")
	flush(t, w)
	advance(time.Minute)
	write(t, w, 10, 20, "recent")
	flush(t, w)
	rc.waitFor(20, 5*time.Second)
	advance(2 * time.Second)
	rc.stop() // the break, while the writer is idle
	waitUntil(t, func() bool { return w.Stats().Failures >= 2 })
	advance(time.Hour) // the receiver is down for an hour
	rc.start()
	waitUntil(t, func() bool { return w.Stats().Connects == 2 }) // re-sent with no Write or Flush
	if st := w.Stats(); st.Resent != 10 {
		t.Errorf("resent %d, want the 10 written in the 5 s before the break", st.Resent)
	}
	advance(time.Minute)
	write(t, w, 20, 25, "new")
	closeWriter(t, w)
	got := seqs(t, rc.settled())
	for i := range 25 {
		want := 1
		if i >= 10 && i < 20 {
			want = 2
		}
		if got[i] != want {
			t.Errorf("message %d arrived %d times, want %d", i, got[i], want)
		}
	}
	if _, resent := r.confirmed(); resent != 10 {
		t.Errorf("reports count %d re-sent, want 10", resent)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting")
		}
	}
}

// A receiver that drops every connection again and again while the writer keeps writing:
// nothing lost, duplicates bounded by what was counted re-sent.
func TestResendUnderRepeatedDrops(t *testing.T) {
	rc := newReceiver(t, "tcp", OctetCounting, nil)
	var r reports
	w := newWriter(t, Options{URL: rc.url("tcp"), Resend: 2 * time.Second, BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, &r)
	const n = 3000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(15 * time.Millisecond)
			rc.drop()
		}
	}()
	for i := 0; i < n; i += 100 {
		write(t, w, i, i+100, strings.Repeat("r", 100))
		flush(t, w)
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	closeWriter(t, w)
	missing, dups := count(seqs(t, rc.settled()), n)
	st := w.Stats()
	t.Logf("connections %d, resent %d, duplicates %d", st.Connects, st.Resent, dups)
	if missing > 0 || int64(dups) > st.Resent || st.Connects < 3 {
		t.Errorf("missing %d, duplicates %d, stats %+v", missing, dups, st)
	}
}

// A receiver that takes connections and drops them at once: each counts as a failed
// attempt, and the writer backs off instead of reconnecting in a tight loop.
func TestQuickBreaksBackOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	var heard atomic.Int64
	var r reports
	w := newWriter(t, Options{URL: "tcp://" + ln.Addr().String(), BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		OnRetry: func(error, time.Duration) { heard.Add(1) }}, &r)
	write(t, w, 0, 10, "into the void")
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	for ctx.Err() == nil {
		w.Flush(ctx)
		time.Sleep(5 * time.Millisecond)
	}
	st := w.Stats()
	t.Logf("stats %+v", st)
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	w.Close(short) // the receiver never takes anything: Close gives up with the context
	if st.Connects < 2 || st.Connects > 15 || heard.Load() < st.Connects-1 {
		t.Errorf("%d connections, %d retries heard in 600 ms: want a backoff of 20 to 100 ms between them", st.Connects, heard.Load())
	}
}
