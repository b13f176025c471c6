package hec

import (
	"context"
	"io"
	"net/http"

	"ta-defender-alerts/app/retry"
)

// Health is one HEC URL's state, for the check command.
type Health struct {
	URL     string
	Up      bool  // /services/collector/health answered healthy
	TokenOK bool  // the token was accepted
	Err     error // what is wrong; nil when Up and TokenOK
}

// Health checks each URL: the health endpoint (no token), then the token with an empty
// request, which a valid token answers with code 5 "No data" and indexes nothing. It tells
// "HEC down" (no answer, or unhealthy) from "bad token" (401/403).
func (c *Client) Health(ctx context.Context) []Health {
	out := make([]Health, 0, len(c.eps))
	for _, ep := range c.eps {
		h := Health{URL: ep.display}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.health, nil)
		if err != nil {
			h.Err = err
			out = append(out, h)
			continue
		}
		resp, err := ep.do(req)
		if err != nil {
			h.Err = &Error{kind: kindRetry, URL: ep.display, Code: -1, Err: retry.URLError(err),
				Hint: "HEC does not answer: check the URL and port, that HEC is enabled, and the network"}
			out = append(out, h)
			continue
		}
		_, herr := readReply(resp, c.cfg.Index)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			herr.URL = ep.display
			if herr.Hint == "" {
				herr.Hint = "HEC is up but reports itself unhealthy (queues full, or shutting down)"
			}
			h.Err = herr
			out = append(out, h)
			continue
		}
		h.Up = true
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, ep.event, http.NoBody)
		if err != nil {
			h.Err = err
			out = append(out, h)
			continue
		}
		c.headers(req, ep)
		resp, err = ep.do(req)
		if err != nil {
			h.Err = &Error{kind: kindRetry, URL: ep.display, Code: -1, Err: retry.URLError(err)}
			out = append(out, h)
			continue
		}
		r, herr := readReply(resp, c.cfg.Index)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusBadRequest && r.Code == 5, herr == nil:
			h.TokenOK = true
		default:
			herr.URL = ep.display
			h.Err = herr
		}
		out = append(out, h)
	}
	return out
}
