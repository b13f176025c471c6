package hec

import (
	"context"
	"time"

	"ta-defender-alerts/app/retry"
)

// URL rotation: round robin over the URLs, and a failing URL set aside for a backoff.

// epHealth is one URL's place in the rotation: when it may be used again, and why not now.
type epHealth struct {
	downUntil time.Time
	fails     int
	err       error // why it was set aside last
}

// pick returns the next URL not set aside, round robin; when all are, it waits for the first
// to come back.
func (c *Client) pick(ctx context.Context) (*endpoint, int, error) {
	for {
		c.mu.Lock()
		now := time.Now()
		n := len(c.eps)
		soonest := -1
		for k := 0; k < n; k++ {
			j := (c.rr + k) % n
			if !c.health[j].downUntil.After(now) {
				c.rr = j + 1
				c.mu.Unlock()
				return c.eps[j], j, nil
			}
			if soonest < 0 || c.health[j].downUntil.Before(c.health[soonest].downUntil) {
				soonest = j
			}
		}
		wait := c.health[soonest].downUntil.Sub(now)
		c.mu.Unlock()
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, 0, err
		}
	}
}

// setAside rests a failing URL: exponential backoff with jitter, at least Retry-After. It
// returns how long the URL now rests.
func (c *Client) setAside(i int, retryAfter time.Duration, why error) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := &c.health[i]
	h.fails++
	h.err = why
	d := max(retry.Delay(c.cfg.BackoffInitial, min(c.cfg.SetAside, c.cfg.BackoffMax), h.fails), retryAfter)
	now := time.Now()
	if until := now.Add(d); until.After(h.downUntil) {
		h.downUntil = until
	}
	c.stats.SetAside++
	return h.downUntil.Sub(now)
}

// downErr is why the URL that comes back first was set aside, if every URL is.
func (c *Client) downErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var soonest *epHealth
	for i := range c.health {
		h := &c.health[i]
		if !h.downUntil.After(now) {
			return nil
		}
		if soonest == nil || h.downUntil.Before(soonest.downUntil) {
			soonest = h
		}
	}
	if soonest == nil {
		return nil
	}
	return soonest.err
}

func (c *Client) markUp(i int) {
	c.mu.Lock()
	c.health[i] = epHealth{}
	c.mu.Unlock()
}
