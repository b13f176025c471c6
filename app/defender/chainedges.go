package defender

import "slices"

// What a chain of links remembers of the versions it handed on (links.go).

// chainEdges bounds how far back a chain remembers what it handed on: the sets of the last
// proofs, together at most about chainEdges*chainGaps pages (8,000 versions, some 1 MB). A link
// that goes back further (that many versions listed late above it) hands on again at most the
// rest of that page, and the chain is dropped. Nothing is lost.
const chainEdges = 4

// repeat reports whether a version on a linked page was handed on by this chain already (it
// is in seen until a proof covers it, then in edges) or came on the page before the first link.
func (c *chain) repeat(d *drain, k key) bool {
	if k.t < c.floor {
		return false // below all of them: most of a linked page, so it costs no look-up
	}
	if _, ok := c.head[k]; ok {
		return true
	}
	for _, e := range c.edges { // proven, so no longer in seen: a link may still go back to it
		if _, ok := e[k]; ok {
			return true
		}
	}
	_, ok := d.seen[k]
	return ok
}

// proven records what the chain had handed on (seen) when a proof covered it, keeping the
// latest proofs' sets up to chainEdges*chainGaps pages of versions (a proof may come every
// page when versions tie at the pages' edges).
func (c *chain) proven(seen map[key]int64, size int) {
	n := len(seen)
	for _, e := range c.edges {
		n += len(e)
	}
	var edge map[key]struct{}
	for len(c.edges) > 0 && n > chainEdges*chainGaps*size {
		n -= len(c.edges[0])
		edge = c.edges[0] // reused: no more than the bound is held at once
		c.edges = slices.Delete(c.edges, 0, 1)
	}
	if edge == nil {
		edge = make(map[key]struct{}, len(seen))
	}
	clear(edge)
	for k := range seen {
		edge[k] = struct{}{}
	}
	c.edges = append(c.edges, edge)
}
