package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"ta-defender-alerts/app/hectest"
)

// Issue 11's fault scenarios: acknowledgements after a crash, and acknowledgements lost.

// ackRecoveryBuilt turns on the assertions that need the collector to recover acks after a
// restart (issue 11, item 2). Until then this suite prints duplicates per crash and asserts
// only that nothing is lost.
const ackRecoveryBuilt = true

// Scenario 9: SIGKILLs spread over a drain with acks coming after 0.3-1 s (log-normal, median
// 300 ms, 99th percentile 1 s) and a window of 8 batches: once with HEC keeping its channels (the restarted
// collector can ask HEC about the batches the killed one had in flight), once with HEC
// forgetting every channel at each kill (as a HEC restart does: nothing can be recovered).
// Nothing may be lost either way; duplicates per crash are printed next to the alerts per
// request, the least a crash can cost.
func TestFaultAckRecovery(t *testing.T) {
	n, kills := pick(3000, 20000), pick(4, 8)
	dups := map[bool]int{}
	for _, forget := range []bool{false, true} {
		name := map[bool]string{false: "keeps channels", true: "forgets channels"}[forget]
		t.Run(name, func(t *testing.T) {
			dups[forget] = faultAckRecovery(t, n, kills, forget)
		})
	}
	if ackRecoveryBuilt && !t.Failed() && dups[true] <= dups[false] { // re-sent: duplicates, or lost in HEC's restart and indexed once
		t.Errorf("%d duplicates with HEC keeping its channels, %d with HEC forgetting them: recovery saved nothing", dups[false], dups[true])
	}
}

func faultAckRecovery(t *testing.T, n, kills int, forget bool) int {
	started := time.Now()
	w := newWorld(t, n, true)
	w.hec.SetAckLatency(hectest.Latency{Median: 300 * time.Millisecond, P99: time.Second}.Sample)
	w.extra = []string{"DEFENDER_HEC_MAX_IN_FLIGHT=8", "DEFENDER_HEC_WINDOW=fixed", "DEFENDER_HEC_ACK_TIMEOUT=5s"} // acks take 0.3-1 s (rarely 2): a forgotten channel is given up after 5 s
	if !full() {
		w.extra = append(w.extra, "DEFENDER_HEC_BATCH_BYTES=262144") // ~30 alerts a request: a drain of ~100 requests
	}
	landed := 0
	var perKill []int // duplicates HEC counted during each run, the first without a crash before it
	last := 0
	for k := 1; k <= kills; k++ {
		cmd, out := w.start(t, "run", "--once")
		killed, err := killWhenIndexed(w, cmd, k*n/(kills+1))
		if err != nil {
			t.Fatalf("run --once: %v\n%s", err, out)
		}
		if !killed {
			break
		}
		d := w.hec.Stats().Duplicates
		perKill, last = append(perKill, d-last), d
		landed++
		if forget {
			w.hec.ForgetChannels()
		}
	}
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	perKill = append(perKill, w.hec.Stats().Duplicates-last)
	what := "HEC keeps channels"
	if forget {
		what = "HEC forgets channels"
	}
	report(t, fmt.Sprintf("9 SIGKILL x%d, acks 0.3-1s, %s", landed, what), w, started)
	st := w.hec.Stats()
	perRequest := float64(st.Indexed) / float64(max(st.Requests, 1)) // every event request succeeds here
	perCrash := float64(st.Duplicates) / float64(max(landed, 1))
	line := fmt.Sprintf("FAULT    %s: duplicates per crash %.0f (%.1f requests' worth; %.0f alerts a request; after each crash %v), ack ids asked on forgotten channels %d",
		what, perCrash, perCrash/perRequest, perRequest, perKill[1:], st.ForgottenAckIDs)
	fmt.Println(line)
	t.Log(line)
	if landed < kills {
		t.Errorf("only %d of %d kills landed during the drain", landed, kills)
	}
	if ackRecoveryBuilt {
		// With HEC up and its channels kept, a crash re-sends at most the request it cut short
		// (one request at a time per channel). Batches vary in alerts (2-5 KB each), hence 2x.
		// Judged on the median crash: on a loaded machine (CI runs packages side by side) the
		// checkpoint can lag the replies by a few requests, whose ack ids a crash then loses
		// (once 459 duplicates in 4 crashes, a mean of 2.0 requests' worth). Without recovery
		// (HEC forgetting its channels) the median crash re-sends about 4 requests' worth.
		if med := median(perKill[1:]); !forget && float64(med) > 2*perRequest {
			t.Errorf("the median crash re-sent %d alerts with HEC keeping its channels; want at most the request cut short (~%.0f alerts)", med, perRequest)
		}
		// The restarted collector asked HEC about the killed one's batches on their old
		// channels; HEC had forgotten them and said so by answering nothing true.
		if forget && st.ForgottenAckIDs == 0 {
			t.Error("HEC forgot every channel at each kill, yet no ack id was asked about on a forgotten channel: nothing tried to recover")
		}
	}
	return st.Duplicates + st.LostInRestart // every alert sent again after a kill
}

// killWhenIndexed SIGKILLs cmd once HEC holds at least target distinct alerts; false if cmd
// ended first (the drain was over).
func killWhenIndexed(w *world, cmd *exec.Cmd, target int) (bool, error) {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			return false, err
		case <-time.After(time.Millisecond):
		}
		if w.hec.Stats().Distinct >= target {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return true, nil
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	return false, fmt.Errorf("HEC did not reach %d alerts in 2 minutes", target)
}

var resentRE = regexp.MustCompile(`msg=done .*\bresent=(\d+)`)

// Scenario 10: 5% of acks never come and 10% of requests are answered busy, acks after
// ~300 ms. Nothing may be lost, and every re-send is counted: each lost ack costs its whole
// request again (HEC indexed it), and the collector's own count of re-sent alerts covers
// every duplicate HEC holds. The quick form shrinks the batches (more requests, so that acks
// do get lost) and the ack timeout; the long form is issue 11's goal at the default settings.
func TestFaultLostAcks(t *testing.T) {
	started := time.Now()
	n := pick(3000, 20000)
	w := newWorld(t, n, true)
	w.hec.SetAckLatency(hectest.Latency{Median: 300 * time.Millisecond, P99: 900 * time.Millisecond}.Sample)
	w.hec.SetFailures(0.10, 0, 0, 0.05)
	if !full() {
		w.extra = []string{"DEFENDER_HEC_BATCH_BYTES=65536", "DEFENDER_HEC_ACK_TIMEOUT=2s", "DEFENDER_HEC_MAX_IN_FLIGHT=8"}
	}
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	took := time.Since(started)
	report(t, fmt.Sprintf("10 lost acks 5%%, busy 10%%, acks ~300ms (%s)", map[bool]string{false: "quick", true: "defaults"}[full()]), w, started)
	st := w.hec.Stats()
	resent := -1
	if m := resentRE.FindAllStringSubmatch(out.String(), -1); len(m) > 0 {
		resent, _ = strconv.Atoi(m[len(m)-1][1])
	}
	line := fmt.Sprintf("FAULT    lost acks: %d acks lost, %d busy replies, %d requests; re-sent %d alerts (collector's count), %d duplicates at HEC; %.1fs (goal at the defaults: < 60 s)",
		st.AcksLost, st.ByStatus[503], st.Requests, resent, st.Duplicates, took.Seconds())
	fmt.Println(line)
	t.Log(line)
	if st.AcksLost == 0 || st.ByStatus[503] == 0 {
		t.Fatalf("the faults did not happen: %d acks lost, %d busy replies", st.AcksLost, st.ByStatus[503])
	}
	if resent < 0 {
		t.Fatalf("no done line with a resent count:\n%s", lastLines(out.String(), 5))
	}
	// Every lost ack's request was indexed and had to be sent again: at least one alert
	// indexed twice per lost ack.
	if st.Duplicates < st.AcksLost {
		t.Errorf("%d duplicates for %d lost acks: a batch whose ack never came was not sent again", st.Duplicates, st.AcksLost)
	}
	// No crash here: every duplicate HEC holds is a re-send the collector made, and counted.
	if resent < st.Duplicates {
		t.Errorf("the collector counted %d alerts re-sent, HEC holds %d duplicates: re-sends went uncounted", resent, st.Duplicates)
	}
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
