package hec

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
