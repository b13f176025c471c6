package hec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"ta-defender-alerts/app/retry"
	"ta-defender-alerts/app/textclean"
)

// kind says what the sender does about a reply; callers see only Error.Retryable.
type kind int

const (
	kindOK        kind = iota
	kindRetry          // 408, 425, 429, 5xx, network errors: back off and send again
	kindPartial        // 400 code 6/12/13 with invalid-event-number: records before it are indexed
	kindTooLarge       // 413: split the request
	kindFatal          // bad token, disabled token, wrong index, …: stop and say why
	kindMalformed      // a single record Splunk will not take (code 6/12/13 without a position)
)

// reply is HEC's JSON answer.
type reply struct {
	Text        string `json:"text"`
	Code        int    `json:"code"`
	AckID       *int64 `json:"ackId"`
	InvalidAt   *int   `json:"invalid-event-number"`
	ackPresent  bool
	status      int
	retryAfter  time.Duration
	bodyUnknown bool
}

// Error is a failed HEC request, classified once where the status code is seen. It never
// carries the token.
type Error struct {
	kind       kind
	URL        string // the HEC server (scheme://host:port)
	Status     int    // 0 for network errors
	Code       int    // HEC's code; -1 when the reply was not HEC's JSON
	Text       string
	Hint       string
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("HEC ")
	b.WriteString(e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code >= 0 && e.Status != 0 {
		fmt.Fprintf(&b, " code %d", e.Code)
	}
	if e.Text != "" {
		fmt.Fprintf(&b, " %q", e.Text)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the failure clears by itself (HEC busy or unreachable, a proxy's
// 408 or 5xx, a lost reply or ack); a refused token, index or record needs a person.
func (e *Error) Retryable() bool { return e.kind == kindRetry }

// isFatal reports whether err is an *Error that retrying cannot fix.
func isFatal(err error) bool {
	var he *Error
	return errors.As(err, &he) && he.kind == kindFatal
}

// maxReply bounds what is read of any HEC reply: HEC's own replies are a few hundred bytes.
const maxReply = 1 << 20

// readReply reads and classifies a reply to an event or ack request.
func readReply(resp *http.Response, index string) (reply, *Error) {
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	r := reply{status: resp.StatusCode, Code: -1}
	if json.Unmarshal(body, &r) != nil {
		r.Code, r.bodyUnknown = -1, true
	}
	r.ackPresent = r.AckID != nil
	r.retryAfter = retry.After(resp.Header.Get("Retry-After"), replyTime(resp.Header))
	e := &Error{Status: resp.StatusCode, Code: r.Code, Text: printable(r.Text), RetryAfter: r.retryAfter}
	if r.bodyUnknown && resp.StatusCode != http.StatusOK {
		e.Text = printable(string(body[:min(len(body), 4*maxText)]))
	}
	switch s := resp.StatusCode; {
	case s == http.StatusOK:
		if rerr != nil || r.bodyUnknown {
			// The events may have been indexed; the caller treats this like a lost reply.
			e.kind, e.Err = kindRetry, errors.New("the reply was cut off or is not HEC's")
			return r, e
		}
		return r, nil
	case s == http.StatusRequestEntityTooLarge:
		e.kind = kindTooLarge
	case s == http.StatusTooManyRequests || s >= 500,
		// A proxy or load balancer that timed out waiting for the request (408), or refused
		// TLS early data (425), passed nothing on: it clears by itself.
		s == http.StatusRequestTimeout || s == http.StatusTooEarly:
		e.kind = kindRetry
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.kind = kindFatal
		switch r.Code {
		case 1:
			e.Hint = "the HEC token is disabled: enable it in Settings → Data inputs → HTTP Event Collector"
		case 2:
			e.Hint = "no token was sent"
		default:
			e.Hint = "the HEC token is not valid: check the token value and that HEC is enabled (Global Settings → All Tokens: Enabled)"
		}
	case s == http.StatusBadRequest:
		switch r.Code {
		case 6, 12, 13:
			if r.InvalidAt != nil {
				e.kind = kindPartial
			} else {
				e.kind = kindMalformed
			}
		case 22:
			e.kind, e.Hint = kindFatal, "the HEC token is disabled: enable it in Settings → Data inputs → HTTP Event Collector"
		case 21:
			e.kind, e.Hint = kindFatal, "the HEC token is not valid"
		case 7:
			e.kind = kindFatal
			if index != "" {
				e.Hint = fmt.Sprintf("the HEC token may not write to index %q: add it to the token's allowed indexes, or change the index", index)
			} else {
				e.Hint = "the token's default index does not exist or is not allowed: set one in the token's settings"
			}
		case 10, 11:
			e.kind, e.Hint = kindFatal, "HEC refused the request channel; this is a bug in defender_alerts, please report it"
		case 14:
			e.kind, e.Hint = kindFatal, "indexer acknowledgement is disabled on this token: enable it, or set the ack mode to auto or off"
		default:
			e.kind = kindFatal
		}
	default:
		e.kind = kindFatal
		if s == http.StatusNotFound {
			e.Hint = "no HEC endpoint at this URL: check the URL and port (8088 by default) and that HEC is enabled"
		}
	}
	return r, e
}

// replyTime is the server's time when it replied, from the reply's Date header, or this
// host's time without one: a Retry-After date is meant on the server's clock.
func replyTime(h http.Header) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return time.Now()
}

// maxText is how much of a remote message an error quotes, in characters.
const maxText = textclean.Max

// printable makes remote text (HEC's "text", a proxy's body) safe for a log line or a
// terminal (see textclean.Line).
func printable(s string) string { return textclean.Line(s) }

// clip cuts s to maxText characters, marking the cut.
func clip(s string) string { return textclean.Clip(s, maxText) }

// mayHaveIndexed tells a lost reply (the request may have arrived) from a refused connection.
func mayHaveIndexed(e *Error) bool {
	if e.Status == http.StatusOK {
		return true // a cut-off 200
	}
	if e.Status != 0 {
		// HEC answered: 429, and 503 "server is busy" (code 9), index nothing. Any other 5xx
		// may come after HEC took the request: HEC's internal error, or a balancer's or
		// proxy's 502, 503, 504 (whatever its body says).
		return e.Status >= 500 && !(e.Status == http.StatusServiceUnavailable && e.Code == 9)
	}
	var oe *net.OpError
	if errors.As(e.Err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
}
