package modinput

import "bytes"

// AppendCompactJSON appends src to dst without the JSON whitespace (space, tab, newline,
// return) that lies outside strings. Compact input (the API's usual form) is one copy.
//
// splunkd breaks the stream's event text on newlines (the sourcetype's LINE_BREAKER), so an
// alert sent pretty-printed would become one event per line. JSON cannot hold a raw newline
// inside a string (it is written \n), so once the whitespace between tokens is gone an alert
// is one line and one event. Bytes inside strings are never touched: escapes stay escapes.
// The scan needs no valid JSON: on anything else it still removes only whitespace outside
// what it reads as strings, and never fails.
func AppendCompactJSON(dst, src []byte) []byte {
	first := nextSpace(src, 0)
	if first < 0 {
		return append(dst, src...)
	}
	for first >= 0 {
		dst = append(dst, src[:first]...)
		src = src[first+1:]
		// Runs of whitespace between tokens (indentation) go at once.
		for len(src) > 0 && isSpace(src[0]) {
			src = src[1:]
		}
		first = nextSpace(src, 0)
	}
	return append(dst, src...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// nextSpace is the index of the first whitespace byte outside strings from i on, src[i]
// being outside a string; -1 when there is none.
func nextSpace(src []byte, i int) int {
	for ; i < len(src); i++ {
		switch src[i] {
		case '"':
			i = stringEnd(src, i+1)
		case ' ', '\t', '\n', '\r':
			return i
		}
	}
	return -1
}

// stringEnd is the index of the quote that ends the string whose text starts at i, or
// len(src) when it does not end. A quote ends it unless an odd number of backslashes comes
// right before it; looking for quotes only keeps long strings (descriptions, evidence) fast.
func stringEnd(src []byte, i int) int {
	for i < len(src) {
		j := bytes.IndexByte(src[i:], '"')
		if j < 0 {
			return len(src)
		}
		i += j
		n := 0
		for k := i - 1; k >= 0 && src[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		i++
	}
	return len(src)
}
