package defender

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Cutting the rest of a window into ranges small enough for one short reply each, for an API
// without a stable order.

// span is a half-open range of lastUpdateTime, or of alertCreationTime within a tie group;
// a zero bound is unbounded (alertCreationTime only).
type span struct{ lo, hi time.Time }

func (s span) oneTick() bool {
	return !s.lo.IsZero() && !s.hi.IsZero() && s.hi.Sub(s.lo) <= TimeResolution
}

func (s span) has(t time.Time) bool {
	return (s.lo.IsZero() || !t.Before(s.lo)) && (s.hi.IsZero() || t.Before(s.hi))
}

func (s span) empty() bool { return !s.lo.IsZero() && !s.hi.IsZero() && !s.lo.Before(s.hi) }

// spanFilter is the query of a span (tie nil: of lastUpdateTime), within what the key leaves.
func (d *drain) spanFilter(s span, tie *time.Time) string {
	var f string
	if tie == nil {
		f = d.dl.rangeFilter(d.dl.updated, s.lo, s.hi)
	} else {
		f = d.tieFilter(*tie)
		if !s.lo.IsZero() {
			f += " and " + d.dl.created + " ge " + d.dl.timeLit(s.lo)
		}
		if !s.hi.IsZero() {
			f += " and " + d.dl.created + " lt " + d.dl.timeLit(s.hi)
		}
	}
	if d.key != nil {
		f += " and " + d.key.filter(d.dl)
	}
	return f
}

// tieFilter is the query of the versions at exactly t.
func (d *drain) tieFilter(t time.Time) string {
	return d.dl.rangeFilter(d.dl.updated, t, t.Add(TimeResolution))
}

func (d *drain) inKey(it item) bool {
	if d.key == nil {
		return true
	}
	if d.key.Key == "created" && it.created == 0 {
		return false
	}
	c := d.key.cmp(it)
	return c > 0 || (c == 0 && d.key.Inclusive)
}

func (d *drain) inSpan(s span, tie *time.Time) func(it item) bool {
	return func(it item) bool {
		if !d.inKey(it) {
			return false
		}
		t := time.Unix(0, it.lut).UTC()
		if tie == nil {
			return s.has(t) && !t.Before(d.from)
		}
		if !t.Equal(*tie) {
			return false
		}
		return it.created == 0 && s.lo.IsZero() && s.hi.IsZero() || it.created != 0 && s.has(time.Unix(0, it.created).UTC())
	}
}

// bisect reads a span of lastUpdateTime (tie nil) or, within the versions at exactly *tie, a
// span of alertCreationTime, in any order. It cuts the span into parts that a count estimate
// and the values seen (sample) say fit in one short reply each, and reads them newest first,
// so that the proven cursor follows. A short reply proves its part; a full one is cut again.
func (d *drain) bisect(ctx context.Context, tie *time.Time, whole span, sample []int64) error {
	if tie == nil && d.st.By == "" {
		d.st.By = "bisection"
	}
	stack, err := d.parts(ctx, whole, tie, sample)
	if err != nil {
		return err
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.empty() {
			continue
		}
		if tie != nil && s.oneTick() { // more than a page sharing both times
			if err := d.skipPasses(ctx, *tie, &s.lo); err != nil {
				return err
			}
			d.doneDownTo(tie, s.lo)
			continue
		}
		r, err := d.read(ctx, d.spanFilter(s, tie), 0, d.inSpan(s, tie), trackNone)
		if err != nil {
			return err
		}
		if r.short(d.size) {
			d.doneDownTo(tie, s.lo)
			continue
		}
		if tie == nil && s.oneTick() { // a full page at one lastUpdateTime
			d.setPage(Cursor{Upper: s.lo, Inclusive: true})
			if err := d.tieThenBelow(ctx, s.lo); err != nil {
				return err
			}
			continue
		}
		if tie != nil && r.noCreated {
			// Versions without alertCreationTime cannot be split by it.
			return d.skipPasses(ctx, *tie, nil)
		}
		var sub []int64
		for _, it := range d.items {
			if tie == nil {
				sub = append(sub, it.lut)
			} else if it.created != 0 {
				sub = append(sub, it.created)
			}
		}
		if len(sub) == 0 {
			return d.dl.errIgnoresFilter()
		}
		more, err := d.parts(ctx, s, tie, sub)
		if err != nil {
			return err
		}
		stack = append(stack, more...)
	}
	return nil
}

// doneDownTo records a part proven: everything from lo up is done.
func (d *drain) doneDownTo(tie *time.Time, lo time.Time) {
	switch {
	case tie == nil:
		d.setPage(Cursor{Upper: lo})
	case !lo.IsZero():
		d.setTie(Cursor{Upper: lo})
	}
}

// parts cuts s, known to hold at least a page, into parts of about three quarters of a page
// each, at the quantiles of sample (the values a full reply showed), oldest first; a sample
// that came newest first is the span's top only, and is cut by topParts instead.
func (d *drain) parts(ctx context.Context, s span, tie *time.Time, sample []int64) ([]span, error) {
	if tie == nil {
		if ps, ok := topParts(s, sample); ok {
			return ps, nil
		}
	}
	n, err := d.estimate(ctx, d.spanFilter(s, tie))
	if err != nil {
		return nil, err
	}
	target := max(d.size*3/4, 1)
	q := min(max((n+target-1)/target, 2), 64)
	sorted := slices.Clone(sample)
	slices.Sort(sorted)
	var cuts []time.Time
	add := func(v int64) {
		t := time.Unix(0, v).UTC().Truncate(TimeResolution)
		if (s.lo.IsZero() || t.After(s.lo)) && (s.hi.IsZero() || t.Before(s.hi)) {
			cuts = append(cuts, t)
		}
	}
	for j := 1; j < q; j++ {
		v := sorted[len(sorted)*j/q]
		add(v)
		// A value that fills more than a part's share gets a part of its own.
		first, _ := slices.BinarySearch(sorted, v)
		last, _ := slices.BinarySearch(sorted, v+1)
		if (last-first)*q > len(sorted) {
			add(v + int64(TimeResolution))
		}
	}
	if len(cuts) == 0 { // every value seen at the span's low end
		add(sorted[0] + int64(TimeResolution))
	}
	if len(cuts) == 0 && !s.lo.IsZero() && !s.hi.IsZero() {
		cuts = append(cuts, s.lo.Add(s.hi.Sub(s.lo)/2).Truncate(TimeResolution))
	}
	slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
	cuts = slices.CompactFunc(cuts, func(a, b time.Time) bool { return a.Equal(b) })
	out := make([]span, 0, len(cuts)+1)
	lo := s.lo
	for _, c := range cuts {
		if c.After(lo) || lo.IsZero() {
			out = append(out, span{lo, c})
			lo = c
		}
	}
	return append(out, span{lo, s.hi}), nil
}

// estimate bounds from above how many versions match filter, which a full reply showed to be
// at least a page: count probes at doubling $skip, then one halving step.
func (d *drain) estimate(ctx context.Context, filter string) (int, error) {
	lo, hi := d.size, 2*d.size
	for {
		ok, err := d.holdsAtMost(ctx, filter, hi)
		if err != nil {
			return 0, err
		}
		if ok {
			break
		}
		lo, hi = hi, 2*hi
		if hi > 64*d.size {
			return hi, nil
		}
	}
	if mid := (lo + hi) / 2; mid > lo {
		ok, err := d.holdsAtMost(ctx, filter, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		}
	}
	return hi, nil
}

// topParts cuts s for a full reply that came newest update first (sample in reply order): it
// holds the span's newest versions, not a sample of all of them, so quantiles of it would cut
// its own short range into many parts, each read by a call (64 calls for a page of 500). The
// parts are instead the reply's range cut at its middle (two parts of about half a page) and
// the rest of the span below it, read next: about three calls a page. false when the reply was
// not in that order, or its lower half lies at one time.
func topParts(s span, sample []int64) ([]span, bool) {
	n := len(sample)
	if n < 2 || !slices.IsSortedFunc(sample, func(a, b int64) int { return cmp.Compare(b, a) }) {
		return nil, false
	}
	low := time.Unix(0, sample[n-1]).UTC().Truncate(TimeResolution)
	mid := time.Unix(0, sample[n/2]).UTC().Truncate(TimeResolution)
	if !low.Before(mid) || !s.has(low) || !s.has(mid) {
		return nil, false
	}
	out := make([]span, 0, 3)
	if s.lo.IsZero() || s.lo.Before(low) {
		out = append(out, span{s.lo, low})
	}
	return append(out, span{low, mid}, span{mid, s.hi}), true
}
