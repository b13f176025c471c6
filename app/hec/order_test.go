package hec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// Outcome.Sent and Rejected.Refused place sends and refusals in one order, so that a caller
// can tell a record indexed from a request sent after a refusal (HEC takes data again) from
// one sent before it.
func TestSendOrder(t *testing.T) {
	for _, ack := range []bool{false, true} {
		t.Run(fmt.Sprintf("ack %v", ack), func(t *testing.T) {
			h := newHEC(t, hectest.Options{Ack: ack})
			bad := map[string]bool{"1": true, "3": true, "4": true}
			h.Reject(func(ev []byte) bool {
				for id := range bad {
					if strings.Contains(string(ev), `"Suspicious activity `+id+`"`) {
						return true
					}
				}
				return false
			})
			c := newClient(t, func(c *hec.Config) { c.MaxInFlight = 1 }, h.URL)
			send := func(ids ...int) hec.Outcome {
				t.Helper()
				bt := c.NewBatcher()
				for _, i := range ids {
					if b := bt.Add(alert(i, 200)); b != nil {
						t.Fatal("the batch filled up")
					}
				}
				res := &result{}
				if err := c.Submit(context.Background(), bt.Flush(), res.done); err != nil {
					t.Fatal(err)
				}
				c.Wait()
				if len(res.outcomes) != 1 || res.outcomes[0].Err != nil {
					t.Fatalf("outcomes %+v", res.outcomes)
				}
				return res.outcomes[0]
			}
			// 1 is refused; 2 goes in a request sent after that refusal.
			a := send(0, 1, 2)
			if len(a.Rejected) != 1 || a.Rejected[0].Refused == 0 || a.Sent <= a.Rejected[0].Refused {
				t.Errorf("batch 0-2: sent %d, rejected %+v: want the indexed end sent after the refusal", a.Sent, a.Rejected)
			}
			// Refused whole: nothing indexed.
			b := send(3, 4)
			if len(b.Rejected) != 2 || b.Sent != 0 || b.Rejected[0].Refused <= a.Sent || b.Rejected[1].Refused <= b.Rejected[0].Refused {
				t.Errorf("batch 3-4: sent %d, rejected %+v: want both refused in order, nothing indexed", b.Sent, b.Rejected)
			}
			c5 := send(5)
			if len(c5.Rejected) != 0 || c5.Sent <= b.Rejected[1].Refused {
				t.Errorf("batch 5: sent %d, after refusals at %d: want it later", c5.Sent, b.Rejected[1].Refused)
			}
		})
	}
}
