package siem

import "unicode/utf8"

// A line over a size limit (a UDP datagram's, say) is made to fit by shortening the
// detection's free text: the long descriptive fields that a reader can lose the end of and
// still know what happened. Ids, times, severity, hashes, names, addresses and links are never
// touched: content matches on them.
//
// The fields are shortened longest first: every free-text field longer (in encoded bytes)
// than a level is cut down to it, the level chosen as high as lets the line fit. A shortened
// value is a prefix of the value, cut between characters, and ends with cutMark ("…"), the
// same mark as a value cut to its key's limit, so one mark means "cut" wherever it is. The
// value is cut before it is escaped, so an escape ("\=", "\\") or a character's bytes are
// never split.

// textField is one free-text field of a detection as a format writes it.
type textField struct {
	get   func(d *Detection) *string
	limit int         // the key's limit in characters; 0: none
	width *[128]uint8 // encoded bytes of each ASCII byte; other bytes write as themselves
}

var (
	cefExtWidth    = widths(map[byte]uint8{'\\': 2, '=': 2, '\n': 2, '\r': 2})
	cefHeaderWidth = widths(map[byte]uint8{'\\': 2, '|': 2})
)

// widths is a width table: 1 for every ASCII byte but those in w.
func widths(w map[byte]uint8) *[128]uint8 {
	var t [128]uint8
	for i := range t {
		t[i] = 1
	}
	for c, n := range w {
		t[c] = n
	}
	return &t
}

// leefWidth is LEEF's width table for delimiter delim (see appendLEEF): '|' and '^' become
// two-byte characters, a delimiter other than the caret or the tab U+FFFD (three bytes).
func leefWidth(delim byte) *[128]uint8 {
	w := map[byte]uint8{'|': 2, '^': 2}
	if delim != '^' && delim != '\t' {
		w[delim] = 3
	}
	return widths(w)
}

func title(d *Detection) *string       { return &d.AlertTitle }
func description(d *Detection) *string { return &d.Description }
func commandLine(d *Detection) *string { return &d.CommandLine }
func filePath(d *Detection) *string    { return &d.FilePath }
func fileName(d *Detection) *string    { return &d.FileName }
func requestURL(d *Detection) *string  { return &d.URL }

// cefText are CEF's free-text fields with the limits Append applies.
var cefText = []textField{
	{get: title, limit: cefNameMax, width: cefHeaderWidth},
	{get: description, limit: 1023, width: cefExtWidth},
	{get: commandLine, limit: 4000, width: cefExtWidth},
	{get: filePath, limit: 1023, width: cefExtWidth},
	{get: fileName, limit: 1023, width: cefExtWidth},
	{get: requestURL, limit: 1023, width: cefExtWidth},
}

// AppendFit appends d as Append does when that line has at most size bytes. Otherwise it
// appends d with its free text shortened (AlertTitle, Description, CommandLine, FilePath,
// FileName, Url; longest first, each cut one ends with "…") so that the line has at most size
// bytes; the class id stays the original's. It returns false, and the line as short as it
// could make it, when even that is over size (the other fields alone are too long).
func (c *CEF) AppendFit(dst []byte, d *Detection, size int) ([]byte, bool) {
	return appendFit(dst, d, size, cefText, c.append)
}

// AppendFit is CEF.AppendFit for LEEF: the same fields, shortened the same way.
func (l *LEEF) AppendFit(dst []byte, d *Detection, size int) ([]byte, bool) {
	w := leefWidth(l.delim)
	fields := make([]textField, len(cefText))
	for i, f := range cefText {
		fields[i] = textField{get: f.get, width: w}
	}
	return appendFit(dst, d, size, fields, l.append)
}

// appendFit is AppendFit for a format: enc appends a detection with a class id.
func appendFit(dst []byte, d *Detection, size int, fields []textField,
	enc func(dst []byte, d *Detection, class string) []byte) ([]byte, bool) {
	n := len(dst)
	class := classID(d)
	dst = enc(dst, d, class)
	over := len(dst) - n - size
	if over <= 0 {
		return dst, true
	}
	vals := make([]string, len(fields))
	lens := make([]int, len(fields))
	top := 0
	for i, f := range fields {
		v := *f.get(d)
		if f.limit > 0 {
			vals[i] = cut(v, f.limit)
		} else {
			vals[i] = cut(v, len(v)+1) // only the UTF-8 repair
		}
		lens[i] = encodedLen(vals[i], f.width)
		top = max(top, lens[i])
	}
	// saved is what cutting every field longer than level down to it saves.
	saved := func(level int) int {
		s := 0
		for _, e := range lens {
			s += max(0, e-level)
		}
		return s
	}
	low := len(cutMark) // the shortest a cut value can be: the mark alone
	fits := saved(low) >= over
	if fits {
		// The highest level that saves enough: saved(low) >= over > saved(top).
		high := top
		for high-low > 1 {
			if mid := (low + high) / 2; saved(mid) >= over {
				low = mid
			} else {
				high = mid
			}
		}
	}
	short := *d
	for i, f := range fields {
		if lens[i] > low {
			*f.get(&short) = prefix(vals[i], low-len(cutMark), f.width) + cutMark
		}
	}
	dst = enc(dst[:n], &short, class)
	return dst, len(dst)-n <= size
}

// encodedLen is the bytes v takes once written by a format with width table w; v is valid
// UTF-8.
func encodedLen(v string, w *[128]uint8) int {
	n := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < utf8.RuneSelf {
			n += int(w[c])
		} else {
			n++
		}
	}
	return n
}

// prefix is the longest prefix of v, ending between characters, that takes at most room
// bytes once written with width table w.
func prefix(v string, room int, w *[128]uint8) string {
	n := 0
	for i, r := range v {
		k := utf8.RuneLen(r)
		if r < utf8.RuneSelf {
			k = int(w[r])
		}
		if n+k > room {
			return v[:i]
		}
		n += k
	}
	return v
}
