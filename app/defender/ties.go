package defender

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Tie groups (more than a page at one lastUpdateTime) and the query encoding.

// tieThenBelow reads the tie group at t (Page is at t, inclusive), then marks t done.
func (d *drain) tieThenBelow(ctx context.Context, t time.Time) error {
	if err := d.tieGroup(ctx, t); err != nil {
		return err
	}
	d.setPage(Cursor{Upper: t})
	return nil
}

// tieGroup reads every version at exactly t, more than a page of them, apart by
// alertCreationTime (bulk updates touch alerts created at different times): newest created
// first while the API lists them so and a probe confirms it, else by bisection.
func (d *drain) tieGroup(ctx context.Context, t time.Time) error {
	d.st.TieGroups++
	if d.tie == nil {
		d.setTie(Cursor{})
	}
	for {
		f := d.tieFilter(t)
		hi := time.Time{}
		if !d.tie.Upper.IsZero() {
			f += " and " + d.dl.created + upperOp(*d.tie) + d.dl.timeLit(d.tie.Upper)
			hi = hiOf(*d.tie)
		}
		if d.key != nil {
			f += " and " + d.key.filter(d.dl)
		}
		in := func(it item) bool {
			if !d.inKey(it) || it.lut != t.UnixNano() {
				return false
			}
			if d.tie.Upper.IsZero() {
				return true
			}
			c := time.Unix(0, it.created).UTC()
			return it.created != 0 && (c.Before(d.tie.Upper) || c.Equal(d.tie.Upper) && d.tie.Inclusive)
		}
		r, err := d.read(ctx, f, 0, in, trackNone)
		if err != nil || r.short(d.size) {
			return err
		}
		if len(d.items) == 0 {
			return d.dl.errIgnoresFilter()
		}
		if r.noCreated {
			return d.skipPasses(ctx, t, nil)
		}
		kd := keyDef{key: "created"}
		if kd.sorted(d.items) {
			if e, k, at := kd.edge(d.items); k > 0 {
				ok, err := d.holdsAtMost(ctx, f+" and "+kd.aheadFilter(d.dl, e), k)
				if err != nil {
					return err
				}
				if ok {
					d.setTie(Cursor{Upper: time.Unix(0, e.created).UTC(), Inclusive: true, Done: at})
					continue
				}
			}
		}
		var sample []int64
		for _, it := range d.items {
			sample = append(sample, it.created)
		}
		return d.bisect(ctx, &t, span{time.Time{}, hi}, sample)
	}
}

// maxStalls is how many $skip passes in a row may find nothing new while a count probe says
// the group holds more, before the drain gives up on proving it complete. A pass reads the
// group in random pages when the API orders its ties anew on every call; missing one given
// version in ten such passes in a row is about as likely as 1 in 20,000.
const maxStalls = 10

// skipPasses is the last resort for more than a page of versions that share lastUpdateTime t
// (and alertCreationTime *c, when set): $skip pages through the group, pass after pass, as
// long as passes find versions not seen before (an alert updated meanwhile leaves the group
// and shifts the later pages; an API may order ties anew on every call). A pass that finds
// nothing new ends it if a count probe proves that the group holds no more than the versions
// seen; if the probe keeps finding more, the drain stops with an error naming the window, and
// the proven cursors never pass the group.
func (d *drain) skipPasses(ctx context.Context, t time.Time, c *time.Time) error {
	f := d.tieFilter(t)
	if c != nil {
		f += " and " + d.dl.rangeFilter(d.dl.created, *c, c.Add(TimeResolution))
	} else if d.tie != nil && !d.tie.Upper.IsZero() {
		f += " and " + d.dl.created + upperOp(*d.tie) + d.dl.timeLit(d.tie.Upper)
	}
	if d.key != nil {
		f += " and " + d.key.filter(d.dl)
	}
	in := func(it item) bool {
		if !d.inKey(it) || it.lut != t.UnixNano() {
			return false
		}
		return c == nil || it.created == c.UnixNano()
	}
	group := map[string]struct{}{}
	stalls, passes := 0, 0
	for {
		passes++
		found := 0
		for skip := 0; ; skip += d.size {
			r, err := d.read(ctx, f, skip, in, trackNone)
			if err != nil {
				return err
			}
			for _, it := range d.items {
				if _, ok := group[it.id]; !ok {
					group[it.id] = struct{}{}
					found++
				}
			}
			// Stop at a short page, or once past every version known (an API may ignore $skip).
			if r.short(d.size) || skip+d.size > len(group) {
				break
			}
		}
		if found > 0 {
			stalls = 0
			continue
		}
		ok, err := d.holdsAtMost(ctx, f, len(group))
		if err != nil || ok {
			return err
		}
		if stalls++; stalls == maxStalls {
			what := d.dl.updated + " " + d.dl.timeLit(t)
			if c != nil {
				what += " and " + d.dl.created + " " + d.dl.timeLit(*c)
			}
			return &APIError{kind: permanent, api: d.dl.label,
				Message: fmt.Sprintf("reading the window [%s, %s): the versions sharing %s cannot be proven complete: after %d $skip passes the API still holds more than the %d read",
					d.dl.timeLit(d.from), d.dl.timeLit(d.to), what, passes, len(group)),
				Hint: "nothing past them was committed, and the next run reads them again; if this persists, the API's $skip paging does not list every version of the group: please report this"}
		}
	}
}

// escape encodes a query value with %20 for spaces, which every OData server reads.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
