//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A state folder anyone can write to stops run --once before anything is read or sent, and
// check reports it; both say how to fix it.
func TestOpenStateFolderRefused(t *testing.T) {
	w := newWorld(t, 5, false)
	if err := os.Chmod(w.state, 0o777); err != nil {
		t.Fatal(err)
	}
	fix := "chmod 700 " + w.state
	cmd, out := w.start(t, "run", "--once")
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %d (%v), want 1\n%s", code, err, out)
	}
	if !strings.Contains(out.String(), fix) {
		t.Errorf("the message does not say %q:\n%s", fix, out)
	}
	if n := w.hec.Stats().Distinct; n != 0 {
		t.Errorf("%d alerts were sent from an unsafe state folder", n)
	}
	if _, err := os.Lstat(filepath.Join(w.state, "tenant1.json.lock")); err == nil {
		t.Error("a lock file was created in the refused folder")
	}

	for _, kv := range w.env()[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"check"}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("check: exit %d, want 1\n%s", code, stdout.String())
	}
	if !strings.Contains(stdout.String(), "✗ state folder "+w.state) || !strings.Contains(stdout.String(), fix) {
		t.Errorf("check does not report the state folder and its fix:\n%s", stdout.String())
	}
}
