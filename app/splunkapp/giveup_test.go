package splunkapp

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/hectest"
)

// A run with output = hec ends within its give-up time when acks never come, says why, and
// commits nothing: the next run, with acks back, delivers everything.
func TestRunToHECGivesUp(t *testing.T) {
	old := runGiveUp
	runGiveUp = time.Second
	t.Cleanup(func() { runGiveUp = old })
	r := newRig(t, 40)
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true, Key: func(b []byte) string { return string(b) }})
	defer h.Close()
	h.SetFailures(0, 0, 0, 1) // every ack stays false
	params := r.params(map[string]string{"output": "hec", "hec_url": h.URL, "hec_token": hecToken, "hec_ack_timeout": "30s"})
	r.splunk.SetInput(Scheme, "tenant1", params)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- Run(ctx, strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, params)), &out, &errb)
	}()
	select {
	case code := <-done:
		took := time.Since(start)
		if code != 1 || took > runGiveUp+5*time.Second {
			t.Errorf("exit %d after %v; want 1 within the give-up time (%v)", code, took, runGiveUp)
		}
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatalf("the run was still waiting for an ack after 20 s (give-up time %v)", runGiveUp)
	}
	for _, want := range []string{"ERROR", "gave up after 1s", "no indexer acknowledgement", "sticky"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, errb.String())
		}
	}
	h.SetFailures(0, 0, 0, 0)
	out.Reset()
	errb.Reset()
	masked := r.params(map[string]string{"output": "hec", "hec_url": h.URL, "hec_token": mask, "client_secret": mask, "hec_ack_timeout": "30s"})
	if code := Run(context.Background(), strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, masked)), &out, &errb); code != 0 {
		t.Fatalf("the run with acks back: exit %d\n%s", code, errb.String())
	}
	if st := h.Stats(); st.Distinct != 40 {
		t.Errorf("%d of 40 alerts indexed after the second run", st.Distinct)
	}
}
