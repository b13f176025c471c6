package defender

import "sync"

// handedJSON caches the JSON of a drain's Handed list as it grows. Positions taken after every
// alert hold prefixes of one list (window.go), and a pump writes each of them with its batch:
// along next links or inside a tie group the list holds thousands of versions, so each version
// is written once here instead of once a position. A drain starts a new cache whenever it
// replaces the list (commit).
type handedJSON struct {
	mu   sync.Mutex // a pump may encode positions on another goroutine than the drain's
	b    []byte     // the versions written so far, joined by ','
	ends []int      // ends[i] is len(b) after version i
}

// handedRef is a position's share of the cache: its list as the drain gave it (the first
// element's address and the length). A list a caller replaced is written without the cache.
type handedRef struct {
	c     *handedJSON
	first *AlertVersion
	n     int
}

func (r handedRef) holds(vs Versions) bool {
	return r.c != nil && len(vs) == r.n && len(vs) > 0 && &vs[0] == r.first
}

// appendTo appends vs, a prefix of the list the cache is for, as a JSON array.
func (h *handedJSON) appendTo(b []byte, vs Versions) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.ends); i < len(vs); i++ {
		if i > 0 {
			h.b = append(h.b, ',')
		}
		h.b = vs[i].appendJSON(h.b)
		h.ends = append(h.ends, len(h.b))
	}
	b = append(b, '[')
	if len(vs) > 0 {
		b = append(b, h.b[:h.ends[len(vs)-1]]...)
	}
	return append(b, ']')
}
