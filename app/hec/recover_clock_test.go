package hec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// TestRecoverEndsWhenTheClockWentBack: tickets saved while the host's clock ran an hour
// ahead (corrected since, or the checkpoint carried to another host) are asked about for
// the ack timeout from now, not until their own time plus the ack timeout: the collector
// would otherwise sit in its recovery for an hour, delivering nothing.
func TestRecoverEndsWhenTheClockWentBack(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(300 * time.Millisecond)
	tickets := sendTickets(t, srv, 3)
	srv.SetAckDelay(time.Hour) // nothing more is acknowledged
	ahead := make([]hec.Ticket, len(tickets))
	for i, tk := range tickets {
		tk.AckID += 100 // ids HEC has not acknowledged: never answered true
		tk.Sent = time.Now().Add(time.Hour)
		ahead[i] = tk
	}
	c := newClient(t, func(c *hec.Config) { c.AckTimeout = 300 * time.Millisecond }, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	ok, err := c.Recover(ctx, ahead)
	if err != nil {
		t.Fatalf("recovery did not end by itself (%v after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	for i, v := range ok {
		if v {
			t.Errorf("ticket %d confirmed, but HEC acknowledged nothing for it", i)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("recovery took %v, want about the ack timeout (300ms)", d)
	}
}

// FuzzRecoverTickets reads tickets as a checkpoint holds them (JSON; "{URL}" stands for the
// stand-in's address) and recovers them against a HEC whose channel holds real batches with
// acks still to come: whatever the tickets say, recovery ends within the ack timeout, only
// asks (HEC indexes nothing), and confirms no ticket but those of requests HEC really took,
// by their channel and ack id.
func FuzzRecoverTickets(f *testing.F) {
	srv := newHEC(f, hectest.Options{Ack: true})
	srv.SetAckDelay(50 * time.Millisecond)
	real := sendTickets(f, srv, 4)
	taken := map[string]bool{}
	for _, tk := range real {
		taken[fmt.Sprintf("%s/%d", tk.Channel, tk.AckID)] = true
		tk.URL = strings.Replace(tk.URL, srv.URL, "{URL}", 1)
		b, _ := json.Marshal([]hec.Ticket{tk})
		f.Add(b)
	}
	all, _ := json.Marshal(real)
	f.Add(bytes.ReplaceAll(all, []byte(srv.URL), []byte("{URL}")))
	f.Add([]byte(`[{"url":"{URL}/services/collector/event","channel":"5f0e1b6a-0b7c-4c3e-9d2a-1f4e6a8b9c0d","ack_id":0,"sent":"9999-01-01T00:00:00Z"}]`))
	f.Add([]byte(`[{"url":"{URL}/services/collector/event","channel":"","ack_id":-1},{"url":"https://other:8088/services/collector/event","channel":"x\r\nInjected: 1","ack_id":1,"cookies":["a=b\n"]}]`))
	c := newClient(f, func(c *hec.Config) {
		c.AckTimeout, c.AckInterval, c.AckOverdueMin = 100*time.Millisecond, 5*time.Millisecond, 50*time.Millisecond
	}, srv.URL)
	f.Fuzz(func(t *testing.T, data []byte) {
		var tickets []hec.Ticket
		if json.Unmarshal(bytes.ReplaceAll(data, []byte("{URL}"), []byte(srv.URL)), &tickets) != nil || len(tickets) > 64 {
			return
		}
		indexed := srv.Stats().Indexed
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ok, err := c.Recover(ctx, tickets)
		if ctx.Err() != nil {
			t.Fatalf("recovery of %d tickets did not end within 10 s: %v", len(tickets), err)
		}
		if len(ok) != len(tickets) {
			t.Fatalf("%d answers for %d tickets", len(ok), len(tickets))
		}
		for i, v := range ok {
			if v && !taken[fmt.Sprintf("%s/%d", tickets[i].Channel, tickets[i].AckID)] {
				t.Fatalf("ticket %d (channel %q, ack id %d) confirmed, but no such request was taken", i, tickets[i].Channel, tickets[i].AckID)
			}
		}
		if n := srv.Stats().Indexed; n != indexed {
			t.Fatalf("recovery indexed %d events: it must only ask", n-indexed)
		}
	})
}
