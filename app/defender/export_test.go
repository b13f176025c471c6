package defender

import "time"

// For the external tests: build and compare claims.
func ClaimAdd(c *Claim, id string, t time.Time) { c.add(keyOf(id, t)) }
func ClaimCovers(c, d Claim) bool               { return c.covers(d) }

// LinkQuery is the query the client would send for a next link, if it follows it.
func LinkQuery(c *Client, link string) (string, bool) {
	return (&drain{c: c, dl: c.dl}).linkQuery(link)
}
