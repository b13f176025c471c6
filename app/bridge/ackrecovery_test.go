package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
)

// crashDrain runs one drain with a fresh HEC client and stops it, without grace, once HEC has
// taken `after` requests: batches sent and not yet acknowledged are left in flight, as a
// crash leaves them.
func (r *rig) crashDrain(t *testing.T, after int) Stats {
	t.Helper()
	hc, err := hec.New(hec.Config{URLs: []string{r.hec.URL}, Token: secret.String(hecToken), BatchBytes: 64 << 10,
		AckInterval: 20 * time.Millisecond, AckTimeout: 5 * time.Second, MaxInFlight: 64})
	if err != nil {
		t.Fatal(err)
	}
	store, err := checkpoint.Open(r.dir, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(store, r.dir)
	cfg.Grace = time.Millisecond
	p := New(cfg, DefenderSource(r.reads), HECSink(hc, 50*time.Millisecond))
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		for r.hec.Stats().Requests < after {
			time.Sleep(2 * time.Millisecond)
		}
		stop()
	}()
	_ = p.Drain(ctx)
	stop()
	hc.Close()
	p.Close()
	store.Close()
	return p.Stats()
}

// End to end with the real HEC client: a crash leaves batches awaiting their acks; the next
// run asks HEC about them on the old channel and sends none of them again. When HEC has
// forgotten the channel (a restart, which also loses the batches whose acks were not ready),
// they are all sent again: nothing is lost either way.
func TestAckRecoveryEndToEnd(t *testing.T) {
	for _, forget := range []bool{false, true} {
		name := map[bool]string{false: "HEC keeps the channel", true: "HEC forgot the channel"}[forget]
		t.Run(name, func(t *testing.T) {
			r := newRig(t, true, 3000)
			// Acks come well after the crash even on a loaded machine: acks the first run read
			// and did not save before it (an ack id answers true once) would be sent again.
			r.hec.SetAckDelay(3 * time.Second)
			first := r.crashDrain(t, 20)
			if first.Confirmed >= 3000 {
				t.Fatal("the first run was not cut short")
			}
			store, err := checkpoint.Open(r.dir, "tenant1")
			if err != nil {
				t.Fatal(err)
			}
			st, err := store.Load()
			store.Close()
			if err != nil || st == nil || len(st.Pending) == 0 {
				t.Fatalf("the checkpoint holds no batches awaiting acks after the crash (%v)", err)
			}
			inFlight, maxBatch := 0, 0
			for _, p := range st.Pending {
				maxBatch = max(maxBatch, p.N)
				if !p.Confirmed {
					inFlight += p.N
				}
			}
			hs := r.hec.Stats()
			t.Logf("after the crash: HEC requests %d, indexed %d, distinct %d; confirmed %d; pending %+v", hs.Requests, hs.Indexed, hs.Distinct, first.Confirmed, func() (o []string) {
				for _, p := range st.Pending {
					o = append(o, fmt.Sprintf("n=%d c=%v t=%d", p.N, p.Confirmed, len(p.Tickets)))
				}
				return
			}())
			if forget {
				r.hec.ForgetChannels()
			}
			t0 := time.Now()
			defer func() { t.Logf("second run took %v", time.Since(t0)) }()
			second, err := r.drain(context.Background(), func(c *hec.Config) { c.AckTimeout = 8 * time.Second; c.MaxInFlight = 64 })
			if err != nil {
				t.Fatal(err)
			}
			if lost := r.lost(); len(lost) > 0 {
				t.Fatalf("%d alerts lost", len(lost))
			}
			hs = r.hec.Stats()
			dups := hs.Duplicates
			t.Logf("in flight at the crash: %d alerts in %d batches; recovered %d; duplicates %d; lost in the restart %d", inFlight, len(st.Pending), second.Recovered, dups, hs.LostInRestart)
			// The last pending batch's ticket may have been told before its request went (the
			// ack id predicted), and the stop came before HEC had it: that one batch was never
			// indexed, so it is neither recovered nor sent "again".
			if forget {
				// Sent again: indexed twice, or lost by the restart and indexed once.
				if resent := dups + hs.LostInRestart; second.Recovered != 0 || resent < inFlight-maxBatch {
					t.Errorf("HEC forgot the channel, yet %d alerts were recovered and %d sent again (want 0 and at least the %d in flight, less one batch)", second.Recovered, resent, inFlight)
				}
				return
			}
			// A request the stop cut short after HEC indexed it has its ticket (predicted):
			// nothing should come twice, but an ack read and not yet saved may (one batch).
			if second.Recovered < inFlight-maxBatch || dups > maxBatch {
				t.Errorf("recovered %d of the %d alerts in flight, %d duplicates: want all recovered (but one batch) and at most one batch twice (%d)", second.Recovered, inFlight, dups, maxBatch)
			}
		})
	}
}
