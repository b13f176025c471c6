package bridge

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// reply is one batch's answer as a sink gives it, for the frontier tests.
type reply struct {
	first, last uint64
	refused     []int  // the refused records' places in the batch
	sent        uint64 // on the sink's count; 0: nothing of it was delivered
	refusedAt   uint64 // when its refusals came, on the same count
	counted     bool   // (refused whole) counted in the carried run by an earlier drain
}

func (r reply) answer() answer {
	n := int(r.last - r.first + 1)
	var rej []Rejected
	for i := len(r.refused) - 1; i >= 0; i-- { // any order: the frontier sorts them
		rej = append(rej, Rejected{ID: fmt.Sprint("r", r.first+uint64(r.refused[i])), Index: r.refused[i], Code: 6, Refused: r.refusedAt})
	}
	a := newAnswer(r.last, n, rej, r.sent)
	a.counted = a.whole && r.counted
	return a
}

// all lists places from to to-1.
func all(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// The frontier takes answers in record order, whatever order they come in, and moves over a
// batch once it is settled. Refusals are settled (dead-lettered) only once something sent
// after them is indexed; a run of batches refused whole stops it. settle runs for each part
// the frontier moves over, before it moves, with that part's refusals in record order.
func TestFrontierAdvance(t *testing.T) {
	tests := []struct {
		name        string
		carry       checkpoint.Held
		give        []reply
		failSettle  uint64 // settle fails for the part ending here
		wantAt      uint64
		wantScanned uint64
		wantSettled []string // "last:refused ids" for each part settled, in order
		wantHeld    int      // answers (or ends) held
		wantErr     error
	}{
		{name: "in order", give: []reply{{first: 1, last: 10, sent: 1}, {first: 11, last: 20, sent: 2}},
			wantAt: 20, wantScanned: 20, wantSettled: []string{"10:", "20:"}},
		{name: "a gap waits", give: []reply{{first: 11, last: 20, sent: 2}, {first: 21, last: 25, sent: 3}},
			wantAt: 0, wantScanned: 0},
		{name: "the gap filled", give: []reply{{first: 11, last: 20, sent: 2}, {first: 21, last: 25, sent: 3}, {first: 1, last: 10, sent: 1}},
			wantAt: 25, wantScanned: 25, wantSettled: []string{"10:", "20:", "25:"}},
		{name: "a rare bad record inside a batch", give: []reply{{first: 1, last: 10, refused: []int{2, 5}, sent: 11, refusedAt: 10}},
			wantAt: 10, wantScanned: 10, wantSettled: []string{"10:r3,r6"}},
		{name: "a refused end is held", give: []reply{{first: 1, last: 10, refused: []int{8, 9}, sent: 10, refusedAt: 11}},
			wantAt: 8, wantScanned: 10, wantSettled: []string{"8:"}, wantHeld: 1},
		{name: "a refused end, then a batch sent after it", give: []reply{{first: 1, last: 10, refused: []int{8, 9}, sent: 10, refusedAt: 11}, {first: 11, last: 20, sent: 12}},
			wantAt: 20, wantScanned: 20, wantSettled: []string{"8:", "10:r9,r10", "20:"}},
		{name: "a refused end, then a batch sent before it", give: []reply{{first: 1, last: 10, refused: []int{8, 9}, sent: 10, refusedAt: 11}, {first: 11, last: 20, sent: 9}},
			wantAt: 8, wantScanned: 20, wantSettled: []string{"8:"}, wantHeld: 2},
		{name: "a whole batch refused, then one sent after", give: []reply{{first: 1, last: 10, refused: all(0, 10), refusedAt: 5}, {first: 11, last: 12, sent: 6}},
			wantAt: 12, wantScanned: 12, wantSettled: []string{"10:r1,r2,r3,r4,r5,r6,r7,r8,r9,r10", "12:"}},
		{name: "systematic: three whole batches, 60 records", give: []reply{{first: 1, last: 5, sent: 1}, {first: 6, last: 25, refused: all(0, 20), refusedAt: 2},
			{first: 26, last: 45, refused: all(0, 20), refusedAt: 3}, {first: 46, last: 65, refused: all(0, 20), refusedAt: 4}, {first: 66, last: 70, sent: 5}},
			wantAt: 5, wantScanned: 65, wantSettled: []string{"5:"}, wantHeld: 3, wantErr: errRefusedAll},
		{name: "three whole batches but few records", give: []reply{{first: 1, last: 5, refused: all(0, 5), refusedAt: 1}, {first: 6, last: 10, refused: all(0, 5), refusedAt: 2},
			{first: 11, last: 15, refused: all(0, 5), refusedAt: 3}},
			wantAt: 0, wantScanned: 15, wantHeld: 3},
		{name: "a carried run counts its batches", carry: checkpoint.Held{Batches: 2, Records: 40, Through: time.Unix(1, 0)},
			give:   []reply{{first: 1, last: 20, refused: all(0, 20), refusedAt: 1}, {first: 21, last: 50, refused: all(0, 30), refusedAt: 2}},
			wantAt: 0, wantScanned: 50, wantHeld: 2, wantErr: errRefusedAll},
		{name: "a carried run's own batches count once", carry: checkpoint.Held{Batches: 2, Records: 40, Through: time.Unix(1, 0)},
			give: []reply{{first: 1, last: 20, refused: all(0, 20), refusedAt: 1, counted: true}, {first: 21, last: 40, refused: all(0, 20), refusedAt: 2, counted: true},
				{first: 41, last: 60, refused: all(0, 20), refusedAt: 3, counted: true}},
			wantAt: 0, wantScanned: 60, wantHeld: 3},
		{name: "settle fails, then a later batch is indexed", give: []reply{{first: 1, last: 10, refused: []int{0}, sent: 2, refusedAt: 1}, {first: 11, last: 20, sent: 3}},
			failSettle: 10, wantAt: 0, wantScanned: 10, wantErr: errSettle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f frontier
			f.reset()
			f.carry = tt.carry
			var settled []string
			settle := func(d answer) error {
				if d.last == tt.failSettle {
					return errSettle
				}
				var ids []string
				for _, r := range d.rejected {
					ids = append(ids, r.ID)
				}
				settled = append(settled, fmt.Sprintf("%d:%s", d.last, joinIDs(ids)))
				return nil
			}
			var err error
			for _, r := range tt.give {
				f.add(r.first, r.answer())
				if e := f.advance(settle); e != nil && err == nil {
					err = e
				}
			}
			if f.at != tt.wantAt || f.scanned != tt.wantScanned {
				t.Errorf("at %d, scanned %d; want %d, %d", f.at, f.scanned, tt.wantAt, tt.wantScanned)
			}
			if !slices.Equal(settled, tt.wantSettled) {
				t.Errorf("settled %q, want %q", settled, tt.wantSettled)
			}
			if len(f.held) != tt.wantHeld {
				t.Errorf("%d held, want %d", len(f.held), tt.wantHeld)
			}
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == errRefusedAll && !f.halted {
				t.Error("a systematic run did not halt the frontier")
			}
		})
	}
}

var errSettle = errors.New("dead-letter file cannot be written")

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ","
		}
		out += id
	}
	return out
}

// Once halted, the frontier takes no more answers, even one that would release the run.
func TestFrontierHaltedStaysHalted(t *testing.T) {
	var f frontier
	f.reset()
	settle := func(answer) error { return nil }
	for i, r := range []reply{{first: 1, last: 20, refused: all(0, 20), refusedAt: 1}, {first: 21, last: 40, refused: all(0, 20), refusedAt: 2},
		{first: 41, last: 60, refused: all(0, 20), refusedAt: 3}} {
		f.add(r.first, r.answer())
		err := f.advance(settle)
		if (i == 2) != errors.Is(err, errRefusedAll) {
			t.Fatalf("answer %d: err %v", i, err)
		}
	}
	f.add(61, reply{first: 61, last: 70, sent: 9}.answer())
	if err := f.advance(settle); err != nil || f.at != 0 || f.scanned != 60 {
		t.Errorf("after the halt: err %v, at %d, scanned %d; want nil, 0, 60", err, f.at, f.scanned)
	}
}

// A run held at the end of a drain is carried to the next one: Quiet counts the drains in a
// row that ended with it not grown, and starts over when it grows or is new. Settling
// anything ends a carried run; reset keeps it.
func TestFrontierCarried(t *testing.T) {
	to := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		carry checkpoint.Held
		give  []reply
		want  checkpoint.Held
	}{
		{name: "a new run", give: []reply{{first: 1, last: 10, refused: all(0, 10), refusedAt: 1}},
			want: checkpoint.Held{Batches: 1, Records: 10, Through: to, Quiet: 1}},
		{name: "a refused end alone", give: []reply{{first: 1, last: 10, refused: []int{9}, sent: 1, refusedAt: 2}},
			want: checkpoint.Held{Batches: 0, Records: 1, Through: to, Quiet: 1}},
		{name: "the same run again", carry: checkpoint.Held{Batches: 1, Records: 10, Through: to.Add(-time.Minute), Quiet: 1},
			give: []reply{{first: 1, last: 10, refused: all(0, 10), refusedAt: 1, counted: true}},
			want: checkpoint.Held{Batches: 1, Records: 10, Through: to, Quiet: 2}},
		{name: "the run grew", carry: checkpoint.Held{Batches: 1, Records: 10, Through: to.Add(-time.Minute), Quiet: 2},
			give: []reply{{first: 1, last: 10, refused: all(0, 10), refusedAt: 1, counted: true}, {first: 11, last: 12, refused: all(0, 2), refusedAt: 2}},
			want: checkpoint.Held{Batches: 2, Records: 12, Through: to, Quiet: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f frontier
			f.reset()
			f.carry = tt.carry
			for _, r := range tt.give {
				f.add(r.first, r.answer())
				if err := f.advance(func(answer) error { return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.carried(to); got != tt.want {
				t.Errorf("carried %+v, want %+v", got, tt.want)
			}
		})
	}

	var f frontier
	f.reset()
	f.carry = checkpoint.Held{Batches: 1, Records: 3, Through: to, Quiet: 1}
	f.add(1, reply{first: 1, last: 3, refused: all(0, 3), refusedAt: 1, counted: true}.answer())
	_ = f.advance(func(answer) error { return nil })
	f.reset()
	if f.carry.Batches != 1 || len(f.held) != 0 || f.scanned != 0 {
		t.Errorf("reset: carry %+v, %d held, scanned %d; want the carry kept and the rest cleared", f.carry, len(f.held), f.scanned)
	}
	f.add(1, reply{first: 1, last: 2, sent: 5}.answer())
	_ = f.advance(func(answer) error { return nil })
	if !f.carry.Through.IsZero() {
		t.Errorf("settling records left the carried run %+v", f.carry)
	}
}
