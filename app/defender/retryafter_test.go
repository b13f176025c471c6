package defender

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"ta-defender-alerts/app/retry"
)

// retryReply is a reply with status and a Retry-After header as given.
func retryReply(status int, retryAfter string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}, Body: http.NoBody}
}

// A throttled or failing reply's Retry-After is read in seconds or as a date on Microsoft's
// clock, and capped.
func TestRetryAfterIsCapped(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		give string
		want time.Duration
	}{
		{"seconds", "30", 30 * time.Second},
		{"fraction", "0.25", 250 * time.Millisecond},
		{"an hour", "3600", time.Hour},
		{"a day in seconds", "86400", retry.MaxAfter},
		{"huge seconds", "1e300", retry.MaxAfter},
		{"date ahead", "Tue, 01 Dec 2026 12:00:45 GMT", 45 * time.Second},
		{"date far ahead", "Fri, 01 Dec 2028 12:00:00 GMT", retry.MaxAfter},
		{"date passed", "Tue, 01 Dec 2026 11:59:00 GMT", 0},
		{"negative", "-5", 0},
		{"junk", "soon", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
				if got := classifyResponse(retryReply(status, tt.give), now).RetryAfter; got != tt.want {
					t.Errorf("HTTP %d, Retry-After %q: waits %v, want %v", status, tt.give, got, tt.want)
				}
			}
		})
	}
}

func TestRemoteMessagesAreCleaned(t *testing.T) {
	msg := "bad \x1b[31mred\x1b[0m \u009b2J value\xff" + strings.Repeat("é", 400) + "\nsecond line"
	got := oneLine(msg, 300)
	if strings.ContainsAny(got, "\x1b\u009b\n") || strings.Contains(got, "second line") {
		t.Errorf("control characters or a second line left: %q", got)
	}
	if !strings.HasPrefix(got, "bad [31mred[0m 2J value\uFFFD") {
		t.Errorf("got %q", got)
	}
	if len(got) > 300+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("not cut to 300 bytes: %d", len(got))
	}
	if !utf8.ValidString(got) {
		t.Errorf("a rune was cut in half: %q", got[len(got)-10:])
	}
}

// Whatever a server sends as Retry-After, the wait is between 0 and retry.MaxAfter, and what
// was asked is quoted as one short printable line.
func FuzzRetryAfter(f *testing.F) {
	for _, v := range []string{"30", "0.25", "1e300", "-5", "NaN", "Inf", "Tue, 01 Dec 2026 12:00:45 GMT", "Fri, 01 Dec 2999 12:00:00 GMT", "\x1b[2J"} {
		f.Add(v)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		e := classifyResponse(retryReply(http.StatusTooManyRequests, v), now)
		if d := e.RetryAfter; d < 0 || d > retry.MaxAfter {
			t.Fatalf("Retry-After %q waits %v", v, d)
		}
		if q := e.RetryAfterAsked; strings.ContainsAny(q, "\x1b\r\n\x00") || !utf8.ValidString(q) || len(q) > 64+len("…") {
			t.Fatalf("asked quoted as %q", q)
		}
	})
}
