package defender

import (
	"context"
	"errors"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Following @odata.nextLink within a window (Graph), without trusting the link.
//
// A link continues the API's listing from where the last page ended. No Microsoft page says how
// it counts: if by position (as $skiptoken over $skip does), a version of an earlier page
// updated before the link is read leaves the listing, every later version moves up one place,
// and the link's page begins one version late. The version passed over was never handed on,
// and no later window reads it (it did not change).
//
// So a link is followed only once the page before it was proven by its count probe (the API
// lists newest lastUpdateDateTime first), and each linked page must continue that order: its
// first version at or below the last page's lowest, the rest descending. What a link can then
// pass over lies between the two pages: at or below the last page's lowest time and at or
// above the linked page's highest. Those closed spans (the chain's gaps) are read again
// together, every few pages, in one query of their spans joined by "or" (a proof): a reply
// shorter than $top without a link holds every version in them, so the pages and their
// gaps cover the whole range down to the last page's lowest, and the proven bound moves
// there. When the links end, the proof also takes the rest of the window below the last
// page, which must then be empty of anything not read.
//
// A proof that comes back full, a linked page out of order, a link that fails (an expired
// $skiptoken) or names another host: the chain is dropped, and the window goes on by filter
// pages from the last proven bound, where versions handed on already are dropped as repeats.
// Nothing rests on a link, so none of these can skip a version.
//
// A checkpoint taken along a chain trusts none of it: its progress is the last proven bound,
// and it lists what the chain handed on since (Position.Handed, about chainGaps pages:
// 2,000 versions, up to a page more when taken during a proof's reply). A resumed drain
// reads from that bound by filter pages, where those versions are repeats, and follows links
// again below them. So a stop costs a few calls, and rests on no link or order the stopped
// process saw.
//
// What the proofs rest on: the API lists by update time for the whole chain. A proven page
// must show it first (listsByUpdate), and every linked page is checked against it; a break
// reads everything since the last proof again. Pages before that proof are not read again:
// an API that listed them in update order and then changed its order could have passed
// over versions there.
//
// Per 100,000 alerts in pages of 500: one page and its probe, 199 linked pages and 50 proofs,
// about 252 calls (measured) where filter pages take 401.

// chainGaps is how many gaps a proof reads at most (the query grows by about 100 bytes a gap).
// It also bounds what a checkpoint lists along a chain (Handed): about chainGaps pages, each
// saved with every batch the pump confirms. Measured on the same day (docs/benchmarks.md): at 8,
// 227 calls per 100,000 alerts and 23.1 µs of CPU an alert; at 4, 252 calls and 23.2 µs. The
// CPU is the same (the lists cost what the calls save), so 4 keeps checkpoints half as long.
const chainGaps = 4

// Span is the closed range of update times [Lo, Hi].
type Span struct {
	Lo time.Time `json:"lo"`
	Hi time.Time `json:"hi"`
}

// chain is a run of linked pages since the last proven bound.
type chain struct {
	top    Cursor             // the chain's query reads what it does not cover
	head   map[key]struct{}   // the versions of the page the first link came with
	edges  []map[key]struct{} // what the chain had handed on when each of its last few proofs covered it
	at     Cursor             // how far the chain has read: the proven bound once its gaps prove
	low    int64              // the lowest update time read along the chain (the last page's lowest)
	gaps   []Span             // not yet proven
	broken bool               // a linked page came out of order
	near   int                // versions read at the gaps' edges: a proof reads them again
	floor  int64              // the lowest update time of any version in head, edges or seen
}

// inOrder checks a version of a linked page against the one before it (none: the last page's
// lowest), and records the gap between the pages at the page's first version.
func (c *chain) inOrder(items []item, lut int64) bool {
	if n := len(items); n > 0 {
		return lut <= items[n-1].lut
	}
	if lut > c.low {
		return false
	}
	g := Span{time.Unix(0, lut).UTC(), time.Unix(0, c.low).UTC()}
	if n := len(c.gaps); n == 0 || c.gaps[n-1] != g { // a retried reply may start the same way
		c.gaps = append(c.gaps, g)
	}
	return true
}

// breakChain ends the chain part-way through a linked page that came out of order: the order
// the chain rested on is gone, so its pages since the last proof may have missed versions the
// proofs would not read. The rest of the reply hands on only versions above the proven bound
// (no filter page reads those again); the fall-back reads the rest from that bound.
func (d *drain) breakChain() {
	d.chain.broken = true
	d.chain.gaps = nil
}

// advance moves the chain's progress down to (id, lut), as advanceAt does the page's.
func (c *chain) advance(id string, lut int64) {
	t := time.Unix(0, lut).UTC()
	switch {
	case t.Before(c.at.Upper) || t.Equal(c.at.Upper) && !c.at.Inclusive:
		c.at.Upper, c.at.Inclusive = t, true
		c.at.Done = append(c.at.Done[:0], id)
	case t.Equal(c.at.Upper):
		c.at.Done = append(c.at.Done, id)
	}
}

// above reports whether a version lies above c's bound (a proven range).
func (it item) above(c Cursor) bool {
	u := c.Upper.UnixNano()
	return it.lut > u || it.lut == u && !c.Inclusive
}

// inChain is what a linked page may list: the chain's query range. A version above the proven
// bound that is not a repeat breaks the chain's order, and is handed on rather than taken for
// proven.
func (d *drain) inChain(it item) bool {
	t := time.Unix(0, it.lut).UTC()
	return !t.Before(d.from) && !coversTime(d.chain.top, it.id, t)
}

// listsByUpdate reports whether the API has shown that it lists by update time, not creation
// time: a proven page (d.items, in reply order) newest update first, with at least one pair
// listed against their creation order. A listing by creation time can pass the first page's
// probe and then list an old alert updated since far down, out of update order and above
// the bound the links' proofs have moved, where no filter page would look again. Evidence
// seen once holds for the client.
func (d *drain) listsByUpdate() bool {
	if d.c.byUpdate.Load() {
		return true
	}
	if d.pageShowsUpdateOrder() {
		d.c.byUpdate.Store(true)
		return true
	}
	return false
}

// pageShowsUpdateOrder reports whether the page in d.items is newest-update-first and, by a
// pair listed against creation order, not by creation. It remembers nothing: only a page
// whose count probe held may teach the client (listsByUpdate).
func (d *drain) pageShowsUpdateOrder() bool {
	for i := 1; i < len(d.items); i++ {
		a, b := d.items[i-1], d.items[i]
		if a.lut < b.lut {
			return false
		}
		if a.created != 0 && b.created != 0 && a.created < b.created {
			return true
		}
	}
	return false
}

// linkQuery returns the query of a next link that names this client's API and path, and false
// for any other: the bearer token goes nowhere else.
func (d *drain) linkQuery(link string) (string, bool) {
	u, err := url.Parse(link)
	if err != nil || u.User != nil || u.Fragment != "" {
		return "", false
	}
	api := d.c.ep.API
	if !strings.EqualFold(u.Scheme, api.Scheme) || !strings.EqualFold(u.Host, api.Host) ||
		u.Path != strings.TrimRight(api.Path, "/")+d.dl.path || u.RawQuery == "" {
		return "", false
	}
	return u.RawQuery, true
}

// follow reads the rest of the window along the page's next links: done when the window is.
// The page before link was proven and set as the bound.
func (d *drain) follow(ctx context.Context, link string, top Cursor) (bool, error) {
	q, ok := d.linkQuery(link)
	if !ok {
		d.noLinks = true
		return false, nil
	}
	// The page the link came with is proven and dropped from seen, but a link that starts
	// early (versions listed late above it) or goes back lists its versions again.
	// Versions handed on along the chain go to seen and Handed (handOn without progress):
	// a repeat when a version listed late moves the listing down, so that a page begins with
	// the last one's end, and what a checkpoint lists until a proof covers them.
	d.chain = &chain{top: top, low: d.page.Upper.UnixNano(), head: keysOf(d.items), at: d.page.clone(), floor: math.MaxInt64}
	for _, it := range d.items {
		d.chain.floor = min(d.chain.floor, it.lut)
	}
	for k := range d.seen { // none: a chain starts with seen empty
		d.chain.floor = min(d.chain.floor, k.t)
	}
	defer func() { d.chain = nil }()
	followed := map[string]bool{q: true}
	idle := 0 // linked pages in a row that handed on nothing
	for {
		handed := d.st.Alerts + d.st.Delivered
		r, err := d.readQuery(ctx, q, d.inChain, trackAt)
		if err != nil {
			if d.refused(ctx, err) {
				return false, d.fallBack()
			}
			return false, err
		}
		d.st.Links++
		if d.chain.broken {
			return false, d.fallBack()
		}
		if n := len(d.items); n > 0 {
			d.chain.low = d.items[n-1].lut
			d.chain.near += ties(d.items, 0) + ties(d.items, n-1)
		}
		// A chain that hands nothing on for a few pages (a link that left the window, or goes
		// round in a circle) is not followed further.
		if idle++; d.st.Alerts+d.st.Delivered > handed {
			idle = 0
		}
		if idle > 3 {
			return false, d.fallBack()
		}
		end := r.next == ""
		if end || len(d.chain.gaps) >= chainGaps || d.chain.near >= d.size/2 {
			ok, err := d.prove(ctx, d.chain.gaps, end)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, d.fallBack()
			}
			if end {
				return true, nil
			}
			// What the proof covers leaves seen: a link that goes back (versions listed late
			// above) may list it again, so it stays a repeat for the next few proofs.
			d.chain.proven(d.seen, d.size)
			d.setPage(d.chain.at.clone())
			d.chain.gaps, d.chain.near = nil, 0
			// A retried reply may end above where a cut-off one had got to: the next gap
			// starts no higher than the proven bound.
			d.chain.low = min(d.chain.low, d.page.Upper.UnixNano())
		}
		if linkedPageRead != nil {
			linkedPageRead(d)
		}
		next, ok := d.linkQuery(r.next)
		if !ok || followed[next] {
			return false, d.fallBack()
		}
		followed[next] = true
		q = next
	}
}

// linkedPageRead, when set (by the package's tests), sees the drain after each linked page.
var linkedPageRead func(*drain)

func keysOf(items []item) map[key]struct{} {
	m := make(map[key]struct{}, len(items))
	for _, it := range items {
		m[key{it.id, it.lut}] = struct{}{}
	}
	return m
}

// ties counts the versions that share items[i]'s update time (items are newest first).
func ties(items []item, i int) int {
	n := 0
	for _, it := range items {
		if it.lut == items[i].lut {
			n++
		}
	}
	return n
}

// prove reads the gaps (and with tail, the rest of the window below the progress) in one
// query: true when the reply is short, so that nothing in them was passed over.
func (d *drain) prove(ctx context.Context, gaps []Span, tail bool) (bool, error) {
	spans := slices.Clone(gaps)
	if tail {
		spans = append(spans, Span{d.from, d.chain.at.Upper})
	}
	spans = mergeSpans(spans, d.from, d.page.Upper)
	if len(spans) == 0 {
		return true, nil
	}
	var f strings.Builder
	for i, s := range spans {
		if i > 0 {
			f.WriteString(" or ")
		}
		if len(spans) > 1 {
			f.WriteByte('(')
		}
		f.WriteString(d.dl.updated + " ge " + d.dl.timeLit(s.Lo) + " and " + d.dl.updated + " le " + d.dl.timeLit(s.Hi))
		if len(spans) > 1 {
			f.WriteByte(')')
		}
	}
	in := func(it item) bool {
		if !d.inPage(it) {
			return false
		}
		t := time.Unix(0, it.lut).UTC()
		for _, s := range spans {
			if !t.Before(s.Lo) && !t.After(s.Hi) {
				return true
			}
		}
		return false
	}
	r, err := d.read(ctx, f.String(), 0, in, trackNone)
	if err != nil {
		if d.refused(ctx, err) {
			// The API takes no such filter: stop following links in this client.
			d.c.noLinks.Store(true)
			return false, nil
		}
		return false, err
	}
	d.st.Proofs++
	return r.short(d.size), nil
}

// mergeSpans clips spans to [from, upper] and joins those that overlap, newest first.
func mergeSpans(spans []Span, from, upper time.Time) []Span {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		if s.Lo.Before(from) {
			s.Lo = from
		}
		if s.Hi.After(upper) {
			s.Hi = upper
		}
		if !s.Lo.After(s.Hi) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Span) int { return b.Hi.Compare(a.Hi) })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && !s.Hi.Before(merged[n-1].Lo) {
			if s.Lo.Before(merged[n-1].Lo) {
				merged[n-1].Lo = s.Lo
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// refused reports whether err is the API refusing a request for good (an expired or unknown
// $skiptoken, a filter it does not take), rather than an outage, a stop or the handler's error.
func (d *drain) refused(ctx context.Context, err error) bool {
	var ae *APIError
	return ctx.Err() == nil && errors.As(err, &ae) && ae.kind == permanent && ae.Status >= 400 && ae.Status < 500 &&
		ae.Status != 401 && ae.Status != 403
}

// fallBack drops the chain: the window goes on by filter pages from the last proven bound, and
// what the chain handed on stays listed as handed (Position.Handed) until a page proves it.
func (d *drain) fallBack() error {
	d.st.LinkFallbacks++
	d.noLinks = true
	d.chain = nil
	d.commit()
	return nil
}
