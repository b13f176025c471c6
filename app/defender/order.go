package defender

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Paging newest lastUpdateTime first, and along another key when a probe shows the API lists
// by that key.

func (d *drain) pageFilter() string {
	return d.dl.updated + " ge " + d.dl.timeLit(d.from) + " and " + d.dl.updated + upperOp(d.page) + d.dl.timeLit(d.page.Upper)
}

func upperOp(c Cursor) string {
	if c.Inclusive {
		return " le "
	}
	return " lt "
}

// inPage reports whether a version lies in the range the page query asks for.
func (d *drain) inPage(it item) bool {
	t := time.Unix(0, it.lut).UTC()
	if t.Before(d.from) || t.After(d.page.Upper) {
		return false
	}
	return d.page.Inclusive || t.Before(d.page.Upper)
}

// byLastUpdate reads the page below the proven bound and proves it: done when the window is.
func (d *drain) byLastUpdate(ctx context.Context) (bool, error) {
	base := d.pageFilter()
	top := d.page // the page's query reads below it
	r, err := d.read(ctx, base, 0, d.inPage, trackAt)
	trusted := d.trusted
	d.trustAt, d.trusted, d.restored = nil, false, nil
	if err != nil {
		return false, err
	}
	if trusted && !d.claimHolds() {
		d.commit() // the checkpoint's progress claimed more than was handed on: read again
		return false, nil
	}
	if r.short(d.size) {
		return true, nil // a short page held the rest of the window
	}
	if len(d.items) == 0 {
		return false, d.dl.errIgnoresFilter()
	}
	e, k, atL := keyDef{key: "lut"}.edge(d.items)
	low := time.Unix(0, e.lut).UTC()
	if low.Equal(d.page.Upper) { // a full page at the bound itself: a tie group
		d.commit()
		if trusted {
			return false, nil // the checkpoint's progress above the bound is unproven: read again
		}
		return false, d.tieThenBelow(ctx, low)
	}
	ok, err := d.holdsAtMost(ctx, d.dl.updated+" gt "+d.dl.timeLit(low)+" and "+d.dl.updated+upperOp(d.page)+d.dl.timeLit(d.page.Upper), k)
	if err != nil {
		return false, err
	}
	if ok {
		d.reread = 0
		if k == 0 { // all at one time
			d.setPage(Cursor{Upper: low, Inclusive: true})
			return false, d.tieThenBelow(ctx, low)
		}
		d.setPage(Cursor{Upper: low, Inclusive: true, Done: atL})
		// Links start only where nothing handed on lies below the bound (a resumed drain
		// reads past what its checkpoint lists by filter pages, where those are repeats).
		if r.next != "" && d.dl.follow && !d.noLinks && !d.c.noLinks.Load() && len(d.seen) == 0 && d.listsByUpdate() {
			return d.follow(ctx, r.next, top)
		}
		return false, nil
	}
	// Not listed by lastUpdateTime (or a version became visible late in the range).
	if trusted {
		d.commit() // the checkpoint's progress rested on that order: read the page again
		return false, nil
	}
	// A page in update order, from an API that has shown it lists by update time: a version
	// most likely became visible late in its range (both APIs show versions late). The page
	// is read again, where the late one now is (what was handed on is a repeat), up to
	// maxRereads times in a row, before the rest of the window is read as in no order.
	if d.reread < maxRereads && d.inUpdateOrder() {
		d.reread++
		d.commit()
		return false, nil
	}
	kc, err := d.otherKey(ctx, base)
	if err != nil {
		return false, err
	}
	d.st.Unordered = true
	if kc != nil {
		d.setKey(kc)
		return false, nil
	}
	sample := lutSample(d.items)
	d.commit()
	return true, d.bisect(ctx, nil, span{d.from, hiOf(d.page)}, sample)
}

// maxRereads is how many times in a row a page in update order whose probe failed is read
// again. Each costs a page and a probe; bisecting the rest of the window costs about three
// calls a page (bisect.go).
const maxRereads = 3

// inUpdateOrder reports whether the page in flight came newest update first, from an API that
// has shown it lists by update time (listsByUpdate) or whose page shows it.
func (d *drain) inUpdateOrder() bool {
	// Not listsByUpdate: this page failed its probe, so it must not teach the client that the
	// API lists by update (that lets links be followed without proof).
	return slices.IsSortedFunc(d.items, func(a, b item) int { return cmp.Compare(b.lut, a.lut) }) &&
		(d.c.byUpdate.Load() || d.pageShowsUpdateOrder())
}

func hiOf(c Cursor) time.Time {
	if c.Inclusive {
		return c.Upper.Add(TimeResolution)
	}
	return c.Upper
}

func lutSample(items []item) []int64 {
	s := make([]int64, len(items))
	for i, it := range items {
		s[i] = it.lut
	}
	return s
}

// otherKey tries the page in d.items against the other orders it is sorted by: the first one
// a count probe confirms becomes the key. At most three probes.
func (d *drain) otherKey(ctx context.Context, base string) (*KeyCursor, error) {
	tries := 0
	for _, kd := range candidates {
		if kd.key == "created" && slices.ContainsFunc(d.items, func(it item) bool { return it.created == 0 }) {
			continue
		}
		if kd.key == "id" && !d.dl.idKey || !kd.sorted(d.items) {
			continue
		}
		e, k, at := kd.edge(d.items)
		if k == 0 {
			continue // all at one value: no progress along it
		}
		if tries == 3 {
			break
		}
		tries++
		ok, err := d.holdsAtMost(ctx, base+" and "+kd.aheadFilter(d.dl, e), k)
		if err != nil {
			return nil, err
		}
		if ok {
			d.st.By = kd.by(d.dl)
			return kd.cursor(e, at), nil
		}
	}
	return nil, nil
}

// --- along another key ---

func (d *drain) byKey(ctx context.Context) (bool, error) {
	base := d.pageFilter() + " and " + d.key.filter(d.dl)
	in := func(it item) bool {
		if !d.inPage(it) || (d.key.Key == "created" && it.created == 0) {
			return false
		}
		c := d.key.cmp(it)
		return c > 0 || (c == 0 && d.key.Inclusive)
	}
	r, err := d.read(ctx, base, 0, in, trackKey)
	trusted := d.trusted
	d.trustKey, d.trusted, d.restored = nil, false, nil
	if err != nil {
		return false, err
	}
	if trusted && !d.claimHolds() {
		d.commit()
		return false, nil
	}
	if r.short(d.size) {
		return true, nil
	}
	if len(d.items) == 0 {
		return false, d.dl.errIgnoresFilter()
	}
	kd := keyDef{key: d.key.Key, asc: d.key.Asc}
	e, k, at := kd.edge(d.items)
	if k > 0 {
		ok, err := d.holdsAtMost(ctx, base+" and "+kd.aheadFilter(d.dl, e), k)
		if err != nil {
			return false, err
		}
		if ok {
			d.setKey(kd.cursor(e, at))
			return false, nil
		}
		if trusted {
			d.commit()
			return false, nil
		}
	}
	// The order no longer holds, or more than a page shares one value of the key.
	sample := lutSample(d.items)
	d.commit()
	d.st.By += ", then bisected"
	return true, d.bisect(ctx, nil, span{d.from, hiOf(d.page)}, sample)
}
