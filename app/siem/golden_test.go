package siem_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ta-defender-alerts/app/siem"
	"ta-defender-alerts/app/siem/siemtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleAlerts reads the alerts of one of Microsoft's examples (a list reply or a bare alert).
func sampleAlerts(t testing.TB, name string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	if list.Value == nil {
		return []json.RawMessage{b}
	}
	return list.Value
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		if i >= len(g) || i >= len(w) || g[i] != w[i] {
			gl, wl := at(g, i), at(w, i)
			j := 0
			for j < len(gl) && j < len(wl) && gl[j] == wl[j] {
				j++
			}
			from := max(j-40, 0)
			t.Errorf("%s differs from the output at line %d, byte %d (run with -update to accept):\n got: …%.120q\nwant: …%.120q",
				path, i+1, j, gl[min(from, len(gl)):], wl[min(from, len(wl)):])
			return
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

// TestGolden: Microsoft's sample alerts become detections, CEF lines and LEEF lines that
// are byte for byte the reviewed golden files; every line also passes the strict parsers.
func TestGolden(t *testing.T) {
	cef := siem.NewCEF(siem.CEFOptions{})
	leef, err := siem.NewLEEF(siem.LEEFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mde_alert_get_by_id.verbatim.json",
		"mde_list_alerts_example1_default.parsed.json",
		"mde_list_alerts_example2_top10_expand_evidence.parsed.json"} {
		t.Run(name, func(t *testing.T) {
			var js, cefs, leefs []byte
			for _, a := range sampleAlerts(t, name) {
				ds, err := siem.Build(a)
				if err != nil {
					t.Fatal(err)
				}
				for i := range ds {
					if js, err = ds[i].AppendJSON(js); err != nil {
						t.Fatal(err)
					}
					js = append(js, '\n')
					line := cef.Append(nil, &ds[i])
					if _, err := siemtest.ParseCEF(string(line)); err != nil {
						t.Errorf("%s: %v", line, err)
					}
					cefs = append(append(cefs, line...), '\n')
					line = leef.Append(nil, &ds[i])
					if _, err := siemtest.ParseLEEF(string(line)); err != nil {
						t.Errorf("%s: %v", line, err)
					}
					leefs = append(append(leefs, line...), '\n')
				}
			}
			base := filepath.Join("testdata", strings.TrimSuffix(name, ".json"))
			golden(t, base+".detections.golden", js)
			golden(t, base+".cef.golden", cefs)
			golden(t, base+".leef.golden", leefs)
		})
	}
}

// TestDetectionShapeMatchesMicrosofts: a derived detection has exactly the keys of
// Microsoft's example detection, in the same order, and each value of the same JSON kind
// (string, number, null), so content written for the old feed finds its fields.
func TestDetectionShapeMatchesMicrosofts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "siem_detections_response.verbatim.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []json.RawMessage
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	ds, err := siem.Build(sampleAlerts(t, "mde_alert_get_by_id.verbatim.json")[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := ds[0].AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	wk, gk := keyKinds(t, want[0]), keyKinds(t, got)
	// The Alert API has no report id: null, not a made-up number (the one documented change).
	for i := range wk {
		if wk[i] == "ReportID:number" {
			wk[i] = "ReportID:null"
		}
	}
	if strings.Join(gk, "\n") != strings.Join(wk, "\n") {
		t.Errorf("keys and kinds differ from Microsoft's example:\n got: %v\nwant: %v", gk, wk)
	}
}

// keyKinds lists an object's keys in order, each with the kind of its value.
func keyKinds(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		kind := "string"
		switch v.(type) {
		case float64:
			kind = "number"
		case nil:
			kind = "null"
		case bool:
			kind = "bool"
		}
		out = append(out, k.(string)+":"+kind)
	}
	return out
}
