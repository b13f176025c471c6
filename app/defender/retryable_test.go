package defender

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"ta-defender-alerts/app/retry"
)

// Every error the client returns says whether it clears by itself, and callers (the
// collector's stop rule) read only that: what a collector rides out is retryable, what needs
// a person is not.
func TestErrorsSayWhetherTheyClearByThemselves(t *testing.T) {
	api := func(status int) error {
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"error":{"code":"x","message":"y"}}`))}
		return fmt.Errorf("reading alerts: %w", classifyResponse(resp, time.Now()))
	}
	entra := func(status int, body string) error {
		return tokenErrorFrom(&oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, Body: []byte(body)})
	}
	tests := []struct {
		name      string
		give      error
		retryable bool
	}{
		{"throttled", api(429), true},
		{"5xx", api(500), true},
		{"busy", api(503), true},
		{"request timeout", api(408), true},
		{"expired token (renewed)", api(401), true},
		{"network error", &APIError{kind: transient, Err: errors.New("connection reset")}, true},
		{"missing permission", api(403), false},
		{"query rejected", api(400), false},
		{"no endpoint here", api(404), false},
		{"method not allowed", api(405), false},
		{"full page outside the range", errIgnoresFilter(), false},
		{"token endpoint unreachable", tokenErrorFrom(errors.New("dial tcp: connection refused")), true},
		{"token endpoint busy", entra(503, `{"error":"temporarily_unavailable"}`), true},
		{"token endpoint throttled", entra(429, `{}`), true},
		{"wrong secret", entra(401, `{"error":"invalid_client","error_codes":[7000215]}`), false},
		{"unknown tenant", entra(400, `{"error":"invalid_request","error_codes":[90002]}`), false},
		{"not Entra ID", entra(404, `<html>`), false},
		{"bad setting", &FieldError{Field: "Region", Value: "mars", Msg: "is not a documented region"}, false},
		{"bad certificate", &FieldError{Field: "CertificatePEM", Msg: "cannot be used", Err: errors.New("expired")}, false},
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
