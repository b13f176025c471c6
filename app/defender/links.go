package defender

import (
	"context"
	"errors"
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
// A checkpoint taken along a chain records its gaps (Position.Gaps). A resumed drain proves
// them first: if that holds, everything down to the saved progress was handed on before the
// stop; if not, it reads from the saved proven bound again (repeats, no loss).
//
// Per 100,000 alerts in pages of 500: one page and its probe, 199 linked pages and 25 proofs,
// about 226 calls where filter pages take 401.

// chainGaps is how many gaps a proof reads at most (the query grows by about 100 bytes a gap).
const chainGaps = 8

// Span is the closed range of update times [Lo, Hi].
type Span struct {
	Lo time.Time `json:"lo"`
	Hi time.Time `json:"hi"`
}

// chain is a run of linked pages since the last proven bound.
type chain struct {
	low    int64  // the lowest update time read along the chain (the last page's lowest)
	gaps   []Span // not yet proven; positions hold views, so it is only appended to
	broken bool   // a linked page came out of order
	near   int    // versions read at the gaps' edges: a proof reads them again
}

// first checks a linked page's first version against the last page's lowest, and records the
// gap between them.
func (c *chain) first(lut int64) bool {
	if lut > c.low {
		c.broken = true
		return false
	}
	g := Span{time.Unix(0, lut).UTC(), time.Unix(0, c.low).UTC()}
	if n := len(c.gaps); n == 0 || c.gaps[n-1] != g { // a retried reply may start the same way
		c.gaps = append(c.gaps, g)
	}
	return true
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
func (d *drain) follow(ctx context.Context, link string) (bool, error) {
	q, ok := d.linkQuery(link)
	if !ok {
		d.noLinks = true
		return false, nil
	}
	d.chain = &chain{low: d.page.Upper.UnixNano()}
	defer func() { d.chain = nil }()
	for {
		r, err := d.readQuery(ctx, q, d.inPage, trackAt)
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
			d.setPage(d.at.clone())
			d.chain.gaps, d.chain.near = nil, 0
		}
		next, ok := d.linkQuery(r.next)
		if !ok || next == q {
			return false, d.fallBack()
		}
		q = next
	}
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
		spans = append(spans, Span{d.from, d.at.Upper})
	}
	spans = mergeSpans(spans, d.from, d.page.Upper)
	if len(spans) == 0 {
		return true, nil
	}
	// What the chain handed on is a repeat here, not a version to hand on again.
	for _, pk := range d.pageKeys {
		d.seen[pk.k] = pk.created
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

// resumeChain proves the gaps of a checkpoint taken along a chain: if they hold, everything
// down to its progress was handed on before the stop, and the bound moves there.
func (d *drain) resumeChain(ctx context.Context, gaps []Span) error {
	d.chain = &chain{low: d.at.Upper.UnixNano(), gaps: gaps}
	defer func() { d.chain = nil }()
	ok, err := d.prove(ctx, gaps, false)
	if err != nil {
		return err
	}
	if !ok {
		d.st.LinkFallbacks++
		d.commit() // read again from the proven bound: repeats, no loss
		return nil
	}
	d.setPage(d.at.clone())
	return nil
}
