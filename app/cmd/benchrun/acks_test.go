//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseWindows(t *testing.T) {
	for _, tt := range []struct {
		name    string
		give    string
		want    []window
		wantEnv [][]string
		wantErr bool
	}{
		{name: "the table's", give: "fixed:1, fixed:8,adaptive:64", want: []window{{"fixed", 1}, {"fixed", 8}, {"adaptive", 64}},
			wantEnv: [][]string{{"DEFENDER_HEC_WINDOW=fixed", "DEFENDER_HEC_MAX_IN_FLIGHT=1"}, {"DEFENDER_HEC_WINDOW=fixed", "DEFENDER_HEC_MAX_IN_FLIGHT=8"},
				{"DEFENDER_HEC_WINDOW=adaptive", "DEFENDER_HEC_MAX_IN_FLIGHT=64"}}},
		{name: "default sets nothing", give: "default", want: []window{{mode: "default"}}, wantEnv: [][]string{nil}},
		{name: "no bound", give: "adaptive", wantErr: true},
		{name: "zero", give: "fixed:0", wantErr: true},
		{name: "unknown mode", give: "sliding:4", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWindows(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseWindows(%q) error %v, want error %v", tt.give, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("parseWindows(%q) = %v, want %v", tt.give, got, tt.want)
			}
			for i, w := range got {
				if !slices.Equal(w.env(), tt.wantEnv[i]) {
					t.Errorf("%v.env() = %q, want %q", w, w.env(), tt.wantEnv[i])
				}
			}
		})
	}
}

func TestWindowLabel(t *testing.T) {
	if got := (window{"adaptive", 64}).label(false); got != "adaptive ≤ 64 (this build: fixed 64)" {
		t.Errorf("a build without DEFENDER_HEC_WINDOW: %q", got)
	}
	if got := (window{"adaptive", 64}).label(true); got != "adaptive ≤ 64" {
		t.Errorf("a build with DEFENDER_HEC_WINDOW: %q", got)
	}
}

func TestResent(t *testing.T) {
	for _, tt := range []struct {
		name string
		give string
		want int
	}{
		{name: "the last done line", give: "level=INFO msg=done read=5 confirmed=5 rejected=0 resent=3 watermark=x\n" +
			"level=INFO msg=done read=9 confirmed=9 rejected=0 resent=12 watermark=y\n", want: 12},
		{name: "no done line", give: "level=WARN msg=\"HEC did not take a batch\" resent=4\n", want: -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := resent(tt.give); got != tt.want {
				t.Errorf("resent() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	var tl tail
	for i := 0; i < 3*tailMax; i++ {
		tl.Write([]byte{'a'})
	}
	tl.Write([]byte("the end"))
	s := tl.String()
	if len(s) != tailMax || s[len(s)-7:] != "the end" {
		t.Errorf("kept %d bytes ending %q, want %d ending \"the end\"", len(s), s[max(len(s)-7, 0):], tailMax)
	}
}

// An id counts as confirmed from a quick save only where the save's header says its
// document is, not from older bytes left after it.
func TestInCheckpointReadsOnlyTheQuickSavesDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	doc := `{"delivered":[["new",""]]}`
	quick := fmt.Sprintf("defender_alerts quick checkpoint after ab #2 len %d crc 00000000\n%s%s", len(doc), doc, `[["old",""]]}`)
	if err := os.WriteFile(path+".quick-a", []byte(quick), 0o600); err != nil {
		t.Fatal(err)
	}
	if !inCheckpoint(path, "new") {
		t.Error("an id in the quick save's document not found")
	}
	if inCheckpoint(path, "old") {
		t.Error("an id after the quick save's document counted")
	}
}
