package defender

import (
	"bytes"
	"fmt"
	"io"
)

// The page walker's buffer: it reads the reply in chunks and finds where each value ends,
// keeping the value's bytes together; it checks no grammar (jsonvalid.go does).

// fill reads more data, keeping buf[keep:end]; d.pos stays on the same byte. At the end of
// the reply it returns io.ErrUnexpectedEOF (the caller decides whether that is fine).
func (d *pageDecoder) fill(keep int) error {
	if d.eof {
		if d.rerr != nil {
			return d.rerr
		}
		return io.ErrUnexpectedEOF
	}
	if keep > 0 {
		copy(d.buf, d.buf[keep:d.end])
		d.pos -= keep
		d.end -= keep
		d.base += int64(keep)
	}
	if d.end == len(d.buf) {
		if len(d.buf) >= maxRecord {
			return d.errAt(-1, fmt.Sprintf("a single value is larger than %d MiB", maxRecord>>20))
		}
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for {
		m, err := d.r.Read(d.buf[d.end:])
		d.end += m
		if err != nil {
			d.eof = true
			if err != io.EOF {
				d.rerr = err
			}
			if m > 0 {
				return nil
			}
			if d.rerr != nil {
				return d.rerr
			}
			return io.ErrUnexpectedEOF
		}
		if m > 0 {
			return nil
		}
	}
}

// nonSpace skips white space and returns the next byte without consuming it.
func (d *pageDecoder) nonSpace() (byte, error) {
	for {
		for d.pos < d.end {
			if c := d.buf[d.pos]; !isSpace(c) {
				return c, nil
			}
			d.pos++
		}
		if err := d.fill(d.pos); err != nil {
			return 0, err
		}
	}
}

func (d *pageDecoder) expect(want byte, rec int) error {
	c, err := d.nonSpace()
	if err != nil {
		return err
	}
	if c != want {
		return d.errAt(rec, fmt.Sprintf("want %q, found %q", want, c))
	}
	d.pos++
	return nil
}

// scanComposite moves d.pos past the object or array at d.pos, keeping all its bytes in the
// buffer, and returns its length. It only tracks strings and nesting; parseAlert or
// validValue checks the grammar afterwards.
func (d *pageDecoder) scanComposite(rec int) (int, error) {
	start := d.pos
	depth := 0
	i := d.pos
	for {
		if i == d.end {
			off := i - start
			if err := d.fill(start); err != nil {
				return 0, err
			}
			start, i = d.pos, d.pos+off
			continue
		}
		switch d.buf[i] {
		case '{', '[':
			depth++
			if depth > maxDepth {
				return 0, d.errAt(rec, "nested too deeply")
			}
			i++
		case '}', ']':
			depth--
			i++
			if depth == 0 {
				d.pos = i
				return i - start, nil
			}
		case '"':
			// Find the closing quote: one not preceded by an odd run of backslashes.
			j := i + 1
			for {
				k := bytes.IndexByte(d.buf[j:d.end], '"')
				if k < 0 {
					offI, offJ := i-start, d.end-start
					if err := d.fill(start); err != nil {
						return 0, err
					}
					start = d.pos
					i, j = start+offI, start+offJ
					continue
				}
				q := j + k
				bs := 0
				for p := q - 1; p > i && d.buf[p] == '\\'; p-- {
					bs++
				}
				j = q + 1
				if bs%2 == 0 {
					break
				}
			}
			i = j
		default:
			i++
		}
	}
}

// spanString moves d.pos past the string at d.pos, keeping its bytes in the buffer, and
// returns its length (quotes included). It only finds the closing quote; validString checks
// the escapes and characters in between.
func (d *pageDecoder) spanString() (int, error) {
	start := d.pos
	j := start + 1
	for {
		k := bytes.IndexByte(d.buf[j:d.end], '"')
		if k < 0 {
			off := d.end - start
			if err := d.fill(start); err != nil {
				return 0, err
			}
			start = d.pos
			j = start + off
			continue
		}
		q := j + k
		bs := 0
		for p := q - 1; p > start && d.buf[p] == '\\'; p-- {
			bs++
		}
		j = q + 1
		if bs%2 == 0 {
			d.pos = j
			return j - start, nil
		}
	}
}

// scanScalar moves d.pos past a number or literal and returns its length.
func (d *pageDecoder) scanScalar() (int, error) {
	start := d.pos
	i := start
	for {
		if i == d.end {
			off := i - start
			if err := d.fill(start); err != nil {
				return 0, err
			}
			start, i = d.pos, d.pos+off
			continue
		}
		switch d.buf[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			d.pos = i
			return i - start, nil
		}
		i++
	}
}

func (d *pageDecoder) errAt(rec int, msg string) error {
	return &decodeError{Offset: d.base + int64(d.pos), Record: rec, Msg: msg, Noun: d.dl.noun}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
