package defender

import (
	"fmt"
	"time"
)

// For the external tests: build and compare claims.
func ClaimAdd(c *Claim, id string, t time.Time) { c.add(keyOf(id, t)) }
func ClaimCovers(c, d Claim) bool               { return c.covers(d) }

// LinkQuery is the query the client would send for a next link, if it follows it.
func LinkQuery(c *Client, link string) (string, bool) {
	return (&drain{c: c, dl: c.dl}).linkQuery(link)
}

// Every test that follows links checks, after each linked page, what chain.repeat rests on:
// no version the chain remembers (head, edges, seen) lies below its floor, where repeat
// would not look for it and a repeat would be handed on twice.
func init() {
	linkedPageRead = func(d *drain) {
		c := d.chain
		below := func(where string, k key) {
			panic(fmt.Sprintf("chain floor %d above a version in %s: %s at %d", c.floor, where, k.id, k.t))
		}
		for k := range c.head {
			if k.t < c.floor {
				below("head", k)
			}
		}
		for _, e := range c.edges {
			for k := range e {
				if k.t < c.floor {
					below("edges", k)
				}
			}
		}
		for k := range d.seen {
			if k.t < c.floor {
				below("seen", k)
			}
		}
	}
}

// MaxRereads is how many times in a row a page whose probe failed is read again.
const MaxRereads = maxRereads
