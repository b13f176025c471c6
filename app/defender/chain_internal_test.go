package defender

import (
	"fmt"
	"testing"
)

// A chain remembers the versions its proofs covered up to chainEdges*chainGaps pages, however
// many proofs that takes: with a proof every page (versions tied at the pages' edges) it
// reaches back as many versions as with one every chainGaps pages.
func TestChainRemembersProvenVersionsByCount(t *testing.T) {
	const size = 500
	bound := chainEdges * chainGaps * size
	for _, perProof := range []int{size, chainGaps * size} {
		t.Run(fmt.Sprint(perProof), func(t *testing.T) {
			c := &chain{}
			d := &drain{chain: c}
			proofs := 2*bound/perProof + 1
			for p := range proofs {
				seen := map[key]int64{}
				for i := range perProof {
					seen[key{fmt.Sprint(p, "-", i), int64(p)}] = 0
				}
				c.proven(seen, size)
			}
			held := 0
			for _, e := range c.edges {
				held += len(e)
			}
			if held != bound {
				t.Errorf("holds %d versions, want %d", held, bound)
			}
			newest, oldestKept := proofs-1, proofs-bound/perProof
			for p, want := range map[int]bool{newest: true, oldestKept: true, oldestKept - 1: false, 0: false} {
				if got := c.repeat(d, key{fmt.Sprint(p, "-0"), int64(p)}); got != want {
					t.Errorf("proof %d's version: repeat %v, want %v", p, got, want)
				}
			}
		})
	}
}
