package hec

import (
	"context"
	"testing"
	"time"
)

// The adaptive window: full batches that find it full double it up to the maximum; a batch
// sent before it was full (caught up) closes it to one; fixed stays at the maximum.
func TestWindowAdapts(t *testing.T) {
	ctx := context.Background()
	w := newWindow(8, false, 1<<20)
	admitNow := func(full bool) bool {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		return w.admit(c, full) == nil
	}
	// Backlog: every full batch is admitted, the window doubling 1, 2, 4, 8.
	for i := 0; i < 8; i++ {
		if !admitNow(true) {
			t.Fatalf("full batch %d not admitted; limit %d", i+1, w.limit)
		}
	}
	if w.limit != 8 {
		t.Fatalf("limit %d after a backlog, want 8", w.limit)
	}
	if admitNow(true) {
		t.Fatal("a ninth batch was admitted past the maximum of 8")
	}
	// Caught up: a partial batch closes the window to one.
	for i := 0; i < 8; i++ {
		w.release()
	}
	if !admitNow(false) {
		t.Fatal("a partial batch was not admitted into an empty window")
	}
	if w.limit != 1 {
		t.Fatalf("limit %d after a partial batch, want 1", w.limit)
	}
	if admitNow(false) {
		t.Fatal("a second partial batch was admitted while one is in flight (caught up: one at a time)")
	}
	if wide, _ := w.figures(); wide != 8 {
		t.Errorf("widest %d, want 8", wide)
	}

	f := newWindow(3, true, 1<<20)
	for i := 0; i < 3; i++ {
		if err := f.admit(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if f.admit(c, true) == nil {
		t.Fatal("fixed window of 3 admitted a fourth batch")
	}
}

// The byte cap: batches wait while the bytes held would pass it, except a batch alone.
func TestWindowByteCap(t *testing.T) {
	ctx := context.Background()
	w := newWindow(64, true, 1000)
	if err := w.reserve(ctx, 600); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if w.reserve(c, 600) == nil {
		t.Fatal("1,200 bytes reserved under a cap of 1,000")
	}
	if err := w.reserve(ctx, 400); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- w.reserve(ctx, 900) }()
	time.Sleep(10 * time.Millisecond)
	w.unreserve(600)
	select {
	case <-got:
		t.Fatal("900 bytes reserved with 400 held under a cap of 1,000")
	case <-time.After(20 * time.Millisecond):
	}
	w.unreserve(400)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	c2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if w.reserve(c2, 5000) == nil {
		t.Fatal("a batch over the cap was reserved while another is held")
	}
	w.unreserve(900)
	if err := w.reserve(ctx, 5000); err != nil {
		t.Fatal("a batch over the cap, alone, must still go:", err)
	}
	if _, peak := w.figures(); peak != 5000 {
		t.Errorf("peak %d, want 5000", peak)
	}
}
