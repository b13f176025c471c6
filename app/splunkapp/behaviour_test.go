package splunkapp

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"slices"
	"strings"
	"testing"

	"ta-defender-alerts/app/hectest"
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

// Events name their input by default, on both outputs: source defender_alerts://<name>, the
// stanza, as splunkd names a modular input's events; a source set in the stanza is used as it is.
func TestSourceNamesTheInput(t *testing.T) {
	tests := []struct {
		name   string
		output string
		source string // the stanza's source; "" unset
		want   string
	}{
		{name: "stdout, default", output: "stdout", want: "defender_alerts://Contoso Prod"},
		{name: "stdout, set", output: "stdout", source: "mde:contoso", want: "mde:contoso"},
		{name: "hec, default", output: "hec", want: "defender_alerts://Contoso Prod"},
		{name: "hec, set", output: "hec", source: "mde:contoso", want: "mde:contoso"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 5)
			extra := map[string]string{"output": tt.output}
			if tt.source != "" {
				extra["source"] = tt.source
			}
			var h *hectest.Server
			if tt.output == "hec" {
				h = hectest.New(hectest.Options{Token: hecToken})
				t.Cleanup(h.Close)
				extra["hec_url"], extra["hec_token"] = h.URL, hecToken
			}
			params := r.params(extra)
			r.splunk.SetInput(Scheme, "Contoso Prod", params)
			var out, errb bytes.Buffer
			doc := namedInputDoc(r.splunk.URL, sessionKey, r.cpDir, "Contoso Prod", params)
			if code := Run(context.Background(), strings.NewReader(doc), &out, &errb); code != 0 {
				t.Fatalf("run: %d\n%s", code, errb.String())
			}
			var got []string
			if h != nil {
				for _, e := range h.Events() {
					got = append(got, e.Source)
				}
			} else {
				var s struct {
					Sources []string `xml:"event>source"`
				}
				if err := xml.Unmarshal(out.Bytes(), &s); err != nil {
					t.Fatal(err)
				}
				got = s.Sources
			}
			if len(got) != 5 {
				t.Fatalf("%d events with a source, want 5", len(got))
			}
			for _, s := range got {
				if s != tt.want {
					t.Fatalf("source %q, want %q", s, tt.want)
				}
			}
		})
	}
}

// log_level applies to the run's own log: a debug line at debug, none at info, no info line
// at warn; a bad value stops the input, with an error naming log_level, before any call.
func TestRunLogLevel(t *testing.T) {
	tests := []struct {
		give      string
		wantDebug bool
		wantInfo  bool
	}{
		{give: "debug", wantDebug: true, wantInfo: true},
		{give: "", wantInfo: true},
		{give: "info", wantInfo: true},
		{give: "warn"},
		{give: "error"},
	}
	for _, tt := range tests {
		t.Run("log_level="+tt.give, func(t *testing.T) {
			r := newRig(t, 3)
			params := r.params(map[string]string{"log_level": tt.give})
			r.splunk.SetInput(Scheme, "tenant1", params)
			code, ev, log := r.run(t, "tenant1", params)
			if code != 0 || len(ev) != 3 {
				t.Fatalf("exit %d, %d events\n%s", code, len(ev), log)
			}
			debug := strings.Contains(log, "DEBUG settings input=tenant1 feed=endpoint-alerts source=defender_alerts://tenant1 ")
			info := strings.Contains(log, "INFO run done ")
			if debug != tt.wantDebug || info != tt.wantInfo || strings.Contains(log, "DEBUG ") != tt.wantDebug || strings.Contains(log, "INFO ") != tt.wantInfo {
				t.Errorf("debug lines %v, info lines %v; want %v, %v:\n%s", debug, info, tt.wantDebug, tt.wantInfo, log)
			}
		})
	}
	t.Run("bad value", func(t *testing.T) {
		r := newRig(t, 3)
		params := r.params(map[string]string{"log_level": "loud"})
		r.splunk.SetInput(Scheme, "tenant1", params)
		code, ev, log := r.run(t, "tenant1", params)
		if code == 0 || len(ev) != 0 || !strings.HasPrefix(log, `ERROR log_level: "loud" must be debug, info, warn or error`) {
			t.Errorf("exit %d, %d events, log:\n%s", code, len(ev), log)
		}
		if r.api.Stats().APICalls != 0 || len(r.splunk.Calls) != 0 {
			t.Errorf("the input ran: %d API calls, splunkd calls %q", r.api.Stats().APICalls, r.splunk.Calls)
		}
	})
}
