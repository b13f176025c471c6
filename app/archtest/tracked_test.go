package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoBinaryIsTracked: compiled programs never enter the repository (a `go build` at the
// root leaves one there, with this machine's paths inside); the packages build their own.
func TestNoBinaryIsTracked(t *testing.T) {
	out, err := exec.Command("git", "-C", "../..", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing tracked to check", err)
	}
	magic := [][]byte{{0x7f, 'E', 'L', 'F'}, {'M', 'Z'}, {0xcf, 0xfa, 0xed, 0xfe}, {0xfe, 0xed, 0xfa, 0xcf}, {0xca, 0xfe, 0xba, 0xbe}}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			continue // deleted in the work tree
		}
		for _, m := range magic {
			if bytes.HasPrefix(b, m) {
				t.Errorf("%s is a compiled program tracked by git: remove it (git rm --cached) and let .gitignore cover it", f)
			}
		}
		if len(b) > 2<<20 {
			t.Errorf("%s is tracked and %d MiB: the repository holds source, not build output", f, len(b)>>20)
		}
	}
}
