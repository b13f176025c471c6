package splunkapp

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// An Alert API page that arrives pretty-printed (a newline between every token) still gives
// one event per alert on the stdout path: each event is the alert compact, one line (what
// the sourcetype's line breaking keeps whole), and the very bytes the API's compact page gives
// for it. The checkpoint and the skipping of delivered versions see nothing of it: the next
// run sends nothing again.
func TestPrettyPageGivesOneEventPerAlert(t *testing.T) {
	const n = 60
	r := newRig(t, n)
	params := r.params(nil)
	r.splunk.SetInput(Scheme, "pretty", params)
	r.splunk.SetInput(Scheme, "compact", params)

	r.api.Pretty(true)
	code, pretty, log := r.run(t, "pretty", params)
	if code != 0 {
		t.Fatalf("run over pretty pages: %d\n%s", code, log)
	}
	r.api.Pretty(false)
	code, compact, log := r.run(t, "compact", params)
	if code != 0 {
		t.Fatalf("run over compact pages: %d\n%s", code, log)
	}

	if len(pretty) != n || len(compact) != n {
		t.Fatalf("%d events from pretty pages, %d from compact ones, want %d each", len(pretty), len(compact), n)
	}
	for _, ev := range pretty {
		var c bytes.Buffer
		if strings.ContainsAny(ev, "\r\n") || json.Compact(&c, []byte(ev)) != nil || c.String() != ev {
			t.Fatalf("an event is not one line of compact JSON: %.300q", ev)
		}
	}
	slices.Sort(pretty)
	slices.Sort(compact)
	if !slices.Equal(pretty, compact) {
		t.Errorf("the events of the pretty pages are not the API's compact alerts:\n%.300q\n%.300q", pretty[0], compact[0])
	}

	r.api.Pretty(true)
	code, again, log := r.run(t, "pretty", r.params(map[string]string{"client_secret": mask}))
	if code != 0 || len(again) != 0 {
		t.Errorf("the next run over pretty pages: exit %d, %d events sent again, want none\n%s", code, len(again), log)
	}
}
