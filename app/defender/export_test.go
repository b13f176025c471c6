package defender

import "time"

// For the external tests: build and compare claims.
func ClaimAdd(c *Claim, id string, t time.Time) { c.add(keyOf(id, t)) }
func ClaimCovers(c, d Claim) bool               { return c.covers(d) }
