//go:build unix

package main

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
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

// An id counts as confirmed from the checkpoint or its newest quick save, delivered or in a
// pending batch confirmed whole; not from a batch only sent, nor from a quick save that
// follows another checkpoint.
func TestInCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, err := checkpoint.Open(dir, "bench")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	st := &checkpoint.State{Watermark: t0, Delivered: []checkpoint.Key{{ID: "durable", LastUpdate: t0}}}
	if err := s.Save(st); err != nil {
		t.Fatal(err)
	}
	st.Delivered = append(st.Delivered, checkpoint.Key{ID: "quick", LastUpdate: t0})
	st.Window = &checkpoint.Window{From: t0, To: t0.Add(time.Hour), Position: json.RawMessage(`{}`)}
	st.Pending = []checkpoint.Pending{
		{N: 1, Position: json.RawMessage(`{}`), Keys: []checkpoint.Key{{ID: "acked", LastUpdate: t0}}, Confirmed: true},
		{N: 1, Position: json.RawMessage(`{}`), Keys: []checkpoint.Key{{ID: "sent", LastUpdate: t0}}, Tickets: []json.RawMessage{json.RawMessage(`{}`)}},
	}
	if err := s.SaveQuick(st); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"durable": true, "quick": true, "acked": true, "sent": false, "never": false} {
		if got := inCheckpoint(s.Path(), id); got != want {
			t.Errorf("inCheckpoint(%q) = %v, want %v", id, got, want)
		}
	}
	// Another checkpoint put in place: the quick save no longer follows it.
	other := &checkpoint.State{Watermark: t0.Add(time.Minute)}
	b, _ := json.Marshal(other)
	if err := os.WriteFile(s.Path(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if inCheckpoint(s.Path(), "quick") {
		t.Error("an id of a quick save that follows another checkpoint counted")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		give []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 9, 9}, 9},
	} {
		give := slices.Clone(tt.give)
		if got := median(tt.give); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.give, got, tt.want)
		}
		if !slices.Equal(give, tt.give) {
			t.Errorf("median reordered its input: %v, was %v", tt.give, give)
		}
	}
}
