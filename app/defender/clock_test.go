package defender_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/secret"
)

// The client follows the service's clock (the Date header of its replies), whichever way and
// however far the host's clock is off.
func TestClientFollowsMicrosoftsClock(t *testing.T) {
	for _, off := range []time.Duration{15 * time.Minute, -15 * time.Minute, time.Hour, -time.Hour} {
		t.Run(fmt.Sprint("host off by ", off), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{Now: func() time.Time { return time.Now().Add(-off) }})
			c := newClient(t, srv, nil)
			now, err := c.APITime(context.Background())
			if err != nil {
				t.Fatalf("APITime: %v", err)
			}
			if d := now.Sub(time.Now().Add(-off)); d.Abs() > 1500*time.Millisecond {
				t.Errorf("Microsoft's time is %v off from the service's clock", d)
			}
			if d := c.Now().Sub(time.Now().Add(-off)); d.Abs() > 1500*time.Millisecond {
				t.Errorf("Now is %v off from the service's clock", d)
			}
		})
	}
}

// A certificate assertion is signed on Microsoft's clock. With the host's clock 15 minutes
// off, the first assertion (signed before any reply showed Microsoft's time) is refused with
// AADSTS700024; the client signs again on the corrected clock and logs in.
func TestCertificateLoginWithHostClockOff(t *testing.T) {
	for _, off := range []time.Duration{15 * time.Minute, -15 * time.Minute} {
		t.Run(fmt.Sprint("host off by ", off), func(t *testing.T) {
			pemDoc, cert, err := defendertest.SelfSigned(time.Now().Add(-2*time.Hour), time.Now().Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			srv := newServer(t, defendertest.Options{Certificate: cert, Now: func() time.Time { return time.Now().Add(-off) }})
			srv.AddAlerts(10, spread(time.Now().Add(-off), 10))
			c := newClient(t, srv, func(c *defender.Config) {
				c.ClientSecret = ""
				c.CertificatePEM = secret.String(pemDoc)
			})
			n, err := c.Probe(context.Background(), c.Now())
			if err != nil || n != 1 {
				t.Fatalf("probe: %d alerts, err %v", n, err)
			}
		})
	}
}

// A Retry-After given as a date is reckoned on the service's clock, not the host's: with the
// host ahead, a date would already have passed (no wait: a call before the quota frees); with
// the host behind, it would lie far ahead (a wait of the whole clock difference).
func TestRetryAfterDateOnMicrosoftsClock(t *testing.T) {
	for _, off := range []time.Duration{15 * time.Minute, -15 * time.Minute} {
		t.Run(fmt.Sprint("host off by ", off), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{RetryAfterDates: true, Now: func() time.Time { return time.Now().Add(-off) }})
			srv.AddAlerts(10, spread(time.Now().Add(-off), 10))
			srv.Throttle(2, 1500*time.Millisecond)
			var mu sync.Mutex
			var waits []time.Duration
			c := newClient(t, srv, func(c *defender.Config) {
				c.OnRetryAfter = func(status int, asked string, wait time.Duration) {
					mu.Lock()
					waits = append(waits, wait)
					mu.Unlock()
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			n, err := c.Probe(ctx, c.Now())
			if err != nil || n != 1 {
				t.Fatalf("probe: %d alerts, err %v", n, err)
			}
			st := srv.Stats()
			if st.ByStatus[429] != 2 || st.Violations != 0 {
				t.Errorf("429s %d (want 2), calls before the Retry-After date %d (want 0)", st.ByStatus[429], st.Violations)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(waits) != 2 {
				t.Fatalf("told of %d Retry-After waits, want 2", len(waits))
			}
			for _, w := range waits {
				if w < 500*time.Millisecond || w > 3*time.Second {
					t.Errorf("waited %v for a Retry-After date 1.5 s ahead on the service's clock", w)
				}
			}
		})
	}
}
