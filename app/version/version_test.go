package version

import (
	"runtime"
	"testing"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name             string
		commit, modified string
		want             string
	}{
		{name: "unstamped", commit: "unknown", want: "commit: unknown\n"},
		{name: "empty stamp", commit: "", want: "commit: unknown\n"},
		{name: "clean tree", commit: "0123abcd", modified: "false", want: "commit: 0123abcd\n"},
		{name: "modified tree", commit: "0123abcd", modified: "true", want: "commit: 0123abcd (modified)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, m := Commit, Modified
			t.Cleanup(func() { Commit, Modified = c, m })
			Commit, Modified = tt.commit, tt.modified
			want := "defender_alerts " + Version + "\n" + tt.want + "go: " + runtime.Version() + "\n"
			if got := Describe(); got != want {
				t.Errorf("Describe() = %q, want %q", got, want)
			}
		})
	}
}
