package hec_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// OnTaken tells of a batch once HEC has answered the request that carried all of it with an
// ack id, before the ack is awaited: never of a batch one of whose records that request refused,
// nor of one sent where the token has no acks (its 200 confirms it: the outcome says so).
func TestOnTakenToldOfBatchesTakenWhole(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ack       bool
		refuse    string // a record HEC refuses as malformed
		wantTaken []int  // the first alert of each batch told, sorted
	}{
		{name: "acks on", ack: true, wantTaken: []int{0, 5}},
		{name: "acks on, a record refused", ack: true, refuse: `"title":"Suspicious activity 7"`, wantTaken: []int{0}},
		{name: "acks off", ack: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newHEC(t, hectest.Options{Ack: tc.ack})
			srv.SetAckDelay(300 * time.Millisecond)
			if tc.refuse != "" {
				srv.Reject(func(ev []byte) bool { return bytes.Contains(ev, []byte(tc.refuse)) })
			}
			c := newClient(t, func(c *hec.Config) { c.BatchCount = 5; c.MaxInFlight = 2 }, srv.URL)
			var mu sync.Mutex
			var taken []int
			var late bool // told once the ack had come, not before it was awaited
			told := map[int]time.Time{}
			s := c.NewBatchSender(time.Hour, func(o hec.Outcome) {
				mu.Lock()
				if at, ok := told[o.Batch.Tag.(int)]; ok && time.Since(at) < 200*time.Millisecond {
					late = true // acks come 300 ms after the reply
				}
				mu.Unlock()
			})
			s.OnTaken(func(b *hec.Batch) {
				mu.Lock()
				taken = append(taken, b.Tag.(int)-b.Len()+1)
				told[b.Tag.(int)] = time.Now()
				mu.Unlock()
			})
			for i := 0; i < 10; i++ {
				if err := s.Add(context.Background(), alert(i, 100), i); err != nil {
					t.Fatal(err)
				}
			}
			_ = s.Flush(context.Background())
			c.Close()
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(taken) // two batches in flight: told in either order
			if len(taken) != len(tc.wantTaken) || late {
				t.Fatalf("told of batches starting at %v (once their ack had come: %v), want %v, before their acks", taken, late, tc.wantTaken)
			}
			for i := range taken {
				if taken[i] != tc.wantTaken[i] {
					t.Errorf("told of batches starting at %v, want %v", taken, tc.wantTaken)
				}
			}
		})
	}
}
