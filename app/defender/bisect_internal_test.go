package defender

import (
	"math/rand/v2"
	"testing"
	"time"
)

// topParts' edge cases: when it declines (and the caller cuts at quantiles), and that the parts
// it gives cover the span exactly, in order, with nothing empty.
func TestTopPartsEdges(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ns := func(ds ...time.Duration) []int64 {
		out := make([]int64, len(ds))
		for i, d := range ds {
			out[i] = at(d).UnixNano()
		}
		return out
	}
	whole := span{at(0), at(time.Hour)}
	cases := []struct {
		name   string
		s      span
		sample []int64
		want   []span // nil: declined
	}{
		{"one version", whole, ns(50 * time.Minute), nil},
		{"no versions", whole, nil, nil},
		{"oldest first", whole, ns(10*time.Minute, 20*time.Minute, 30*time.Minute), nil},
		{"shuffled", whole, ns(30*time.Minute, 10*time.Minute, 20*time.Minute), nil},
		{"lower half at one time", whole, ns(50*time.Minute, 40*time.Minute, 40*time.Minute, 40*time.Minute), nil},
		{"lower half within one tick", whole, ns(50*time.Minute, 40*time.Minute+50, 40*time.Minute+20, 40*time.Minute+10), nil},
		{"reply below the span", span{at(30 * time.Minute), at(time.Hour)}, ns(50*time.Minute, 40*time.Minute, 20*time.Minute), nil},
		{"reply above the span", span{at(0), at(30 * time.Minute)}, ns(50*time.Minute, 40*time.Minute, 20*time.Minute), nil},
		{"newest first", whole, ns(50*time.Minute, 45*time.Minute, 40*time.Minute, 35*time.Minute),
			[]span{{at(0), at(35 * time.Minute)}, {at(35 * time.Minute), at(40 * time.Minute)}, {at(40 * time.Minute), at(time.Hour)}}},
		{"two versions: the lower half is one time", whole, ns(50*time.Minute, 40*time.Minute), nil},
		{"ties kept together", whole, ns(50*time.Minute, 45*time.Minute, 45*time.Minute, 35*time.Minute, 35*time.Minute),
			[]span{{at(0), at(35 * time.Minute)}, {at(35 * time.Minute), at(45 * time.Minute)}, {at(45 * time.Minute), at(time.Hour)}}},
		{"reply reaches the span's bottom", whole, ns(50*time.Minute, 45*time.Minute, 0),
			[]span{{at(0), at(45 * time.Minute)}, {at(45 * time.Minute), at(time.Hour)}}},
		{"open below", span{time.Time{}, at(time.Hour)}, ns(50*time.Minute, 45*time.Minute, 40*time.Minute),
			[]span{{time.Time{}, at(40 * time.Minute)}, {at(40 * time.Minute), at(45 * time.Minute)}, {at(45 * time.Minute), at(time.Hour)}}},
		{"open above", span{at(0), time.Time{}}, ns(50*time.Minute, 45*time.Minute, 40*time.Minute),
			[]span{{at(0), at(40 * time.Minute)}, {at(40 * time.Minute), at(45 * time.Minute)}, {at(45 * time.Minute), time.Time{}}}},
		{"sub-tick times cut to the tick", whole, ns(50*time.Minute+99, 45*time.Minute+50, 40*time.Minute+1),
			[]span{{at(0), at(40 * time.Minute)}, {at(40 * time.Minute), at(45 * time.Minute)}, {at(45 * time.Minute), at(time.Hour)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := topParts(c.s, c.sample)
			if c.want == nil {
				if ok {
					t.Fatalf("cut into %v; want declined", got)
				}
				return
			}
			if !ok {
				t.Fatalf("declined; want %v", c.want)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if !got[i].lo.Equal(c.want[i].lo) || !got[i].hi.Equal(c.want[i].hi) {
					t.Fatalf("part %d: got %v, want %v", i, got, c.want)
				}
			}
		})
	}
}

// For any reply newest first inside the span, the parts tile it: they start at its lower
// bound, each starts where the last ended, none is empty, and the last ends at its upper bound.
func TestTopPartsTileTheSpan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for i := range 20000 {
		lo := t0.Add(time.Duration(r.IntN(1000)) * TimeResolution)
		hi := lo.Add(time.Duration(2+r.IntN(1000)) * TimeResolution)
		s := span{lo, hi}
		if r.IntN(5) == 0 {
			s.lo = time.Time{}
		}
		if r.IntN(5) == 0 {
			s.hi = time.Time{}
		}
		n := 2 + r.IntN(20)
		sample := make([]int64, n)
		width := hi.Sub(lo)
		for j := range sample {
			sample[j] = lo.Add(time.Duration(r.Int64N(int64(width)))).UnixNano()
		}
		// newest first
		for a := 1; a < n; a++ {
			for b := a; b > 0 && sample[b] > sample[b-1]; b-- {
				sample[b], sample[b-1] = sample[b-1], sample[b]
			}
		}
		parts, ok := topParts(s, sample)
		if !ok {
			continue
		}
		if !parts[0].lo.Equal(s.lo) || !parts[len(parts)-1].hi.Equal(s.hi) {
			t.Fatalf("case %d: parts %v do not reach the ends of %v", i, parts, s)
		}
		for k, p := range parts {
			if p.empty() {
				t.Fatalf("case %d: part %d of %v is empty", i, k, parts)
			}
			if k > 0 && !p.lo.Equal(parts[k-1].hi) {
				t.Fatalf("case %d: parts %v leave a gap or overlap at %d", i, parts, k)
			}
			if !p.lo.IsZero() && !p.hi.IsZero() && !p.lo.Before(p.hi) {
				t.Fatalf("case %d: part %d of %v runs backwards", i, k, parts)
			}
		}
	}
}
