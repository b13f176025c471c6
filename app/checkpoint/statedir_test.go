package checkpoint

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A link planted where the lock goes must not lead Open to create, truncate or write the
// file it points at (the link once made run --once overwrite another file).
func TestOpenRefusesPlantedLockLink(t *testing.T) {
	tests := []struct {
		name   string
		exists bool // the link's target exists (else it dangles: O_CREATE would make it)
	}{
		{"link to an existing file", true},
		{"dangling link", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(t.TempDir(), "victim.conf")
			if tt.exists {
				if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			lock := filepath.Join(dir, FileName("tenant1")+".lock")
			if err := os.Symlink(victim, lock); err != nil {
				if runtime.GOOS == "windows" {
					t.Skip("creating a symlink needs a privilege here:", err)
				}
				t.Fatal(err)
			}
			s, err := Open(dir, "tenant1")
			if err == nil {
				s.Close()
				t.Fatal("Open followed the link planted at the lock path")
			}
			if !strings.Contains(err.Error(), lock) || !strings.Contains(err.Error(), "link") {
				t.Errorf("the error does not say which file is a link: %v", err)
			}
			b, rerr := os.ReadFile(victim)
			switch {
			case tt.exists && string(b) != "precious\n":
				t.Errorf("the link's target was changed to %q", b)
			case !tt.exists && rerr == nil:
				t.Errorf("the link's target was created")
			}
		})
	}
}

// A state folder others can write to is refused at Open, with the command that fixes it.
func TestOpenRefusesUnsafeFolder(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permission bits")
	}
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private", 0o700, true},
		{"readable by all (splunkd's default umask)", 0o755, true},
		{"writable by all", 0o777, false},
		{"writable by group", 0o770, false},
		{"writable by others, sticky", 0o1777, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			s, err := Open(dir, "tenant1")
			if tt.ok {
				if err != nil {
					t.Fatalf("a %v folder was refused: %v", tt.mode, err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("a %v state folder was accepted", tt.mode)
			}
			if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "chmod 700 "+dir) {
				t.Errorf("the error does not name the folder and the fix: %v", err)
			}
			if _, serr := os.Lstat(filepath.Join(dir, FileName("tenant1")+".lock")); serr == nil {
				t.Error("a lock file was created in the refused folder")
			}
		})
	}
}
