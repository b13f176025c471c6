package syslog

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Message is one record to send.
type Message struct {
	// Time is the record's own time: the TIMESTAMP, in UTC to the microsecond (RFC 5424's
	// finest); zero writes the NILVALUE "-".
	Time time.Time
	// MsgID names the kind of record (RFC 5424 MSGID: 1 to 32 printable US-ASCII characters;
	// empty writes "-", the NILVALUE, which "-" itself also is).
	MsgID string
	// Body is the MSG, written as given (no BOM): the Writer copies it.
	Body []byte
	// Tag is the caller's, opaque to the Writer, handed back in Report.Last and Rejected.
	Tag any
}

// Errors in a Rejected or returned by Write; wrapped with the detail.
var (
	// ErrTooBig: the message is over Options.MaxSize and Shorten did not make it fit.
	ErrTooBig = errors.New("message too big")
	// ErrNewline: a body holding a line feed cannot be sent with LF framing.
	ErrNewline = errors.New("body holds a line feed, which LF framing cannot carry")
	// ErrHeader: a header field is not what RFC 5424 allows (a caller's mistake: Write
	// returns it and takes nothing).
	ErrHeader = errors.New("invalid header field")
	// ErrClosed: Write or Flush after Close.
	ErrClosed = errors.New("syslog writer closed")
)

// checkField checks a header field against RFC 5424 6: 1 to max PRINTUSASCII characters
// (33 to 126).
func checkField(s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("must be 1 to %d characters", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return fmt.Errorf("byte %d (%q) is not printable US-ASCII", i, s[i])
		}
	}
	return nil
}

// header is the fixed part of every message: "<PRI>1 " and, after the time,
// " HOSTNAME APP-NAME PROCID ".
type header struct {
	pri  []byte
	host []byte
}

func newHeader(o *Options, procID string) header {
	pri := int(*o.Facility)*8 + int(*o.Severity)
	return header{
		pri:  []byte("<" + strconv.Itoa(pri) + ">1 "),
		host: []byte(" " + o.Hostname + " " + o.AppName + " " + procID + " "),
	}
}

// stampLen is the length of the TIMESTAMP the writer makes: 2006-01-02T15:04:05.000000Z.
const stampLen = 27

// headLen is the bytes before m's MSG, its separating space included: the room for the body
// is MaxSize minus it.
func (h header) headLen(m *Message) int {
	n := len(h.pri) + stampLen + len(h.host) + len(m.MsgID) + len(" - ")
	if m.Time.IsZero() {
		n -= stampLen - 1
	}
	if m.MsgID == "" {
		n++
	}
	return n
}

// checkMessage checks what the caller controls in the header.
func checkMessage(m *Message) error {
	if m.MsgID != "" {
		if err := checkField(m.MsgID, 32); err != nil {
			return fmt.Errorf("%w: MSGID %q: %v", ErrHeader, m.MsgID, err)
		}
	}
	if !m.Time.IsZero() {
		if y := m.Time.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("%w: TIMESTAMP year %d", ErrHeader, y)
		}
	}
	return nil
}

// appendMessage appends the RFC 5424 message: header, no structured data, and the body.
func (h header) appendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, h.pri...)
	if m.Time.IsZero() {
		dst = append(dst, '-')
	} else {
		dst = m.Time.UTC().Truncate(time.Microsecond).AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	}
	dst = append(dst, h.host...)
	if m.MsgID == "" {
		dst = append(dst, '-')
	} else {
		dst = append(dst, m.MsgID...)
	}
	dst = append(dst, " -"...)
	if len(m.Body) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, m.Body...)
	}
	return dst
}

// appendFrame appends msg framed for a stream; framing none (UDP) appends it as is.
func appendFrame(dst, msg []byte, f Framing, stream bool) []byte {
	if !stream {
		return append(dst, msg...)
	}
	if f == LF {
		dst = append(dst, msg...)
		return append(dst, '\n')
	}
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
