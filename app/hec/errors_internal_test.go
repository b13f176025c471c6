package hec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/retry"
	"ta-defender-alerts/app/secret"
)

// Every error a delivery ends with says whether it clears by itself, and callers (the
// collector's stop rule) read only that: HEC busy or unreachable, a proxy's 408 or 5xx, a lost
// reply or ack are ridden out; a refused token or index, or a wrong setting, needs a person.
func TestErrorsSayWhetherTheyClearByThemselves(t *testing.T) {
	replied := func(status int, body string) error {
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
		_, e := readReply(resp, "main")
		if e == nil {
			t.Fatalf("HTTP %d %s: no error", status, body)
		}
		return fmt.Errorf("delivery failed: %w", e)
	}
	c, err := New(Config{URLs: []string{"http://127.0.0.1:1"}, Token: secret.String("t"), AckTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, unreachable := c.post(context.Background(), c.eps[0], []byte("{}"))
	if unreachable == nil {
		t.Fatal("a post to a closed port succeeded")
	}
	tests := []struct {
		name      string
		give      error
		retryable bool
	}{
		{"busy", replied(503, `{"text":"Server is busy","code":9}`), true},
		{"throttled", replied(429, ""), true},
		{"proxy timeout", replied(408, "<html>408</html>"), true},
		{"cut-off reply", replied(200, `{"text":"Succ`), true},
		{"unreachable", unreachable, true},
		{"no ack after three sends", fmt.Errorf("delivery failed: %w", c.noAck(c.eps[0], 4)), true},
		{"bad token", replied(403, `{"text":"Invalid token","code":4}`), false},
		{"disabled token", replied(400, `{"text":"Token disabled","code":22}`), false},
		{"index refused", replied(400, `{"text":"Incorrect index","code":7}`), false},
		{"acks disabled", replied(400, `{"text":"ACK is disabled","code":14}`), false},
		{"no HEC here", replied(404, ""), false},
		{"bad setting", &FieldError{Field: "URLs", Msg: "is required"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retryable, known := retry.Retryable(tt.give)
			if !known || retryable != tt.retryable {
				t.Errorf("%v: Retryable = %v (classified: %v), want %v", tt.give, retryable, known, tt.retryable)
			}
		})
	}
}

// A Retry-After date is reckoned on the clock of the server that sent it (its Date header),
// so a host clock that is off neither stretches nor cancels the wait; without a Date header
// it is this host's clock. Seconds need no clock; every wait is capped at an hour.
func TestRetryAfterOnTheServersClock(t *testing.T) {
	server := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // far from the host's clock
	host := time.Now().UTC().Truncate(time.Second)
	tests := []struct {
		name, date, retryAfter string
		min, max               time.Duration
	}{
		{"date, server's clock", server.Format(http.TimeFormat), server.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, 30 * time.Second},
		{"date passed on the server's clock", server.Format(http.TimeFormat), server.Add(-time.Minute).Format(http.TimeFormat), 0, 0},
		{"date far ahead", server.Format(http.TimeFormat), server.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, time.Hour},
		{"date, no Date header", "", host.Add(time.Minute).Format(http.TimeFormat), 58 * time.Second, time.Minute},
		{"date, unreadable Date header", "yesterday", host.Add(time.Minute).Format(http.TimeFormat), 58 * time.Second, time.Minute},
		{"seconds", server.Format(http.TimeFormat), "7", 7 * time.Second, 7 * time.Second},
		{"seconds, capped", "", "86400", time.Hour, time.Hour},
		{"unreadable", "", "soon", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Retry-After": {tt.retryAfter}}
			if tt.date != "" {
				h.Set("Date", tt.date)
			}
			resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: h, Body: io.NopCloser(strings.NewReader(`{"text":"Server is busy","code":9}`))}
			r, e := readReply(resp, "")
			if e == nil || !e.Retryable() {
				t.Fatalf("a 503 classified as %v", e)
			}
			if r.retryAfter < tt.min || r.retryAfter > tt.max || e.RetryAfter != r.retryAfter {
				t.Errorf("Retry-After %q with Date %q: waits %v (error says %v), want %v to %v", tt.retryAfter, tt.date, r.retryAfter, e.RetryAfter, tt.min, tt.max)
			}
		})
	}
}

// A reply that is not HEC's own "busy" may come after HEC took the request: only HEC's 503
// code 9, 429 and 4xx, and a refused connection, say nothing was indexed.
func TestMayHaveIndexed(t *testing.T) {
	dial := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}
	for _, tc := range []struct {
		name string
		e    *Error
		want bool
	}{
		{"HEC busy", &Error{Status: 503, Code: 9}, false},
		{"HEC throttled", &Error{Status: 429, Code: -1}, false},
		{"HEC refused the data", &Error{Status: 400, Code: 6}, false},
		{"a balancer's 503", &Error{Status: 503, Code: -1}, true},
		{"a proxy's 503 with another code", &Error{Status: 503, Code: 23}, true},
		{"a balancer's 504", &Error{Status: 504, Code: -1}, true},
		{"a proxy's 502", &Error{Status: 502, Code: -1}, true},
		{"HEC's internal error", &Error{Status: 500, Code: 8}, true},
		{"a cut-off 200", &Error{Status: 200, Code: -1}, true},
		{"connection refused", &Error{Code: -1, Err: dial}, false},
		{"connection reset", &Error{Code: -1, Err: read}, true},
	} {
		if got := mayHaveIndexed(tc.e); got != tc.want {
			t.Errorf("%s: mayHaveIndexed %v, want %v", tc.name, got, tc.want)
		}
	}
}
