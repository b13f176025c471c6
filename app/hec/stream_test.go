package hec_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// Each batch's Tag is the tag of its last record; a trickle is sent after the linger time.
func TestStreamTagsAndLinger(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	c := newClient(t, func(c *hec.Config) { c.BatchCount = 7 }, srv.URL)
	var mu sync.Mutex
	lastOf := map[int]bool{}
	var got []hec.Outcome
	s := c.NewStream(50*time.Millisecond, func(o hec.Outcome) {
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	})
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if err := s.Add(ctx, alert(i, 200), i); err != nil {
			t.Fatal(err)
		}
	}
	// Two more, slowly: the linger timer must send them without a Flush.
	time.Sleep(100 * time.Millisecond)
	for i := 30; i < 32; i++ {
		if err := s.Add(ctx, alert(i, 200), i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for srv.Stats().Distinct < 32 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.Wait()
	if n := srv.Stats().Distinct; n != 32 {
		t.Fatalf("indexed %d of 32 without a Flush: linger did not send", n)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, o := range got {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		total += o.Batch.Len()
		tag := o.Batch.Tag.(int)
		// The batch's last envelope holds record number tag.
		body := string(o.Batch.Body())
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if !strings.Contains(lines[len(lines)-1], alert(tag, 0).ID) {
			t.Errorf("batch tagged %d does not end with record %d", tag, tag)
		}
		lastOf[tag] = true
	}
	if total != 32 || !lastOf[31] {
		t.Errorf("%d records in outcomes; last tag 31 seen: %v", total, lastOf[31])
	}
}

// TLS: a private CA is trusted only through CAFile; insecure_skip_verify also works, warned.
func TestTLSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/collector/health" {
			_, _ = w.Write([]byte(`{"text":"HEC is healthy","code":17}`))
			return
		}
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"text":"No data","code":5}`))
	}))
	defer srv.Close()
	if v := srv.TLS.MinVersion; v != 0 && v < tls.VersionTLS12 {
		t.Fatalf("test server TLS %x", v)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*hec.Config)
		ok   bool
	}{
		{"system roots only", nil, false},
		{"ca file", func(c *hec.Config) { c.CAFile = caFile }, true},
		{"skip verify", func(c *hec.Config) { c.InsecureSkipVerify = true }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.mod, srv.URL)
			h := c.Health(context.Background())[0]
			if (h.Err == nil) != tt.ok || h.TokenOK != tt.ok {
				t.Errorf("health %+v, want ok=%v", h, tt.ok)
			}
		})
	}
}

// Stopping (a cancelled context) fails the batches in flight without marking the client
// fatal: the next run starts clean.
func TestCancelIsNotFatal(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetAckDelay(time.Hour) // acks never arrive in time
	c := newClient(t, nil, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	res := &result{}
	bt := c.NewBatcher()
	bt.Add(alert(1, 100))
	if err := c.Submit(ctx, bt.Flush(), res.done); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	c.Wait()
	_, _, errs := res.sum()
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("errs = %v, want context.Canceled", errs)
	}
	if c.Err() != nil {
		t.Errorf("client marked fatal by a cancel: %v", c.Err())
	}
}
