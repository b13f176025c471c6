package defender

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"ta-defender-alerts/app/retry"
)

// kind says what the client does about an error; callers see only Retryable.
type kind int

const (
	// permanent errors do not go away by retrying: fix the configuration or the app registration.
	permanent kind = iota
	// transient errors (5xx, timeouts, resets, cut-off bodies) are retried with backoff.
	transient
	// throttled errors (429) are retried after Retry-After.
	throttled
	// unauthorized (401) renews the token, and becomes permanent when a fresh one is refused.
	unauthorized
)

func (k kind) String() string {
	switch k {
	case transient:
		return "transient"
	case throttled:
		return "throttled"
	case unauthorized:
		return "unauthorized"
	default:
		return "permanent"
	}
}

// APIError is a failed call to the Alert API, classified once where the status code is seen.
type APIError struct {
	kind       kind
	Status     int    // HTTP status, 0 for network errors
	Code       string // the API's error code, e.g. "Forbidden"
	Message    string // the API's message
	Hint       string // what the admin can do
	RetryAfter time.Duration
	// RetryAfterAsked is the Retry-After header as sent (cut short), for the log.
	RetryAfterAsked string
	// RequestID and Date identify the failed request to Microsoft support (Graph's
	// innerError); empty when the reply carried none.
	RequestID, Date string
	// Target is the Defender XDR API's tracking id of the failed request (error.target).
	Target string
	Err    error // the network or decoding error, if any
	api    string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(cmp.Or(e.api, "Defender API"))
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request-id %s", e.RequestID)
		if e.Date != "" {
			fmt.Fprintf(&b, ", date %s", e.Date)
		}
		b.WriteString(")")
	}
	if e.Target != "" {
		fmt.Fprintf(&b, " (tracking id %s)", e.Target)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// Retryable reports whether the failure clears by itself: throttling, 5xx, network errors and
// a token that expired (renewed) do; a permanent refusal needs a person.
func (e *APIError) Retryable() bool { return e.kind != permanent }

// errorKind returns the kind of err: that of an *APIError or *TokenError in its chain, else
// permanent.
func errorKind(err error) kind {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.kind
	}
	var te *TokenError
	if errors.As(err, &te) {
		if te.transient {
			return transient
		}
	}
	return permanent
}

const hintForbidden = "the app lacks the Alert.Read.All application permission or admin consent: " +
	"in Entra ID → App registrations → your app → API permissions, add WindowsDefenderATP → " +
	"Application permissions → Alert.Read.All, then Grant admin consent"

// classifyResponse turns a non-200 reply into an *APIError. It reads at most 64 KiB of body.
// now is Microsoft's clock, against which a Retry-After date is reckoned.
func classifyResponse(resp *http.Response, now time.Time) *APIError {
	return endpointAlerts.classify(resp, now)
}

// classify is classifyResponse in the dialect's error shape and hints.
func (dl *dialect) classify(resp *http.Response, now time.Time) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode, api: dl.label}
	eb := dl.errorBody(resp.Header, body)
	e.Code, e.Message, e.RequestID, e.Date, e.Target = eb.code, eb.message, eb.requestID, eb.date, eb.target
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		e.kind = throttled
		e.RetryAfter = retry.After(resp.Header.Get("Retry-After"), now)
		e.RetryAfterAsked = oneLine(strings.Map(printable, resp.Header.Get("Retry-After")), 64)
		e.Hint = dl.hintThrottled
	case s == http.StatusUnauthorized:
		e.kind = unauthorized
		e.Hint = "the API refused the access token; check that the app registration belongs to this tenant and cloud"
	case s == http.StatusForbidden:
		e.kind = permanent
		e.Hint = dl.hintForbidden
	case s == http.StatusBadRequest:
		e.kind = permanent
		e.Hint = "the API rejected the query; this is a bug in defender_alerts, please report it with this message"
	case s == http.StatusNotFound:
		e.kind = permanent
		e.Hint = "no alerts endpoint at this address; check the API URL, cloud and region"
	case s == http.StatusRequestTimeout || s >= 500:
		e.kind = transient
		e.RetryAfter = retry.After(resp.Header.Get("Retry-After"), now)
		e.RetryAfterAsked = oneLine(strings.Map(printable, resp.Header.Get("Retry-After")), 64)
	default:
		e.kind = permanent
	}
	if e.Message == "" && e.Code == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// alertAPIErrorBody reads the Alert API's {"error": {"code", "message"}}.
func alertAPIErrorBody(_ http.Header, body []byte) errorBody {
	var doc struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return errorBody{}
	}
	return errorBody{code: oneLine(doc.Error.Code, 64), message: oneLine(doc.Error.Message, 300)}
}

// oneLine shortens a server message to its first line, at most n bytes, without control
// characters (a remote message must not drive a terminal or split a log line) and without
// invalid UTF-8.
func oneLine(s string, n int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(strings.Map(printable, strings.ToValidUTF8(s, "\uFFFD")))
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
