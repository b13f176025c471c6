package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		if runtime.GOOS == "windows" {
			t.Skip("creating a symlink needs a privilege here:", err)
		}
		t.Fatal(err)
	}
}

// OpenFile behaves as os.OpenFile for plain files: creates 0600, appends, reopens.
func TestOpenFilePlain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	for _, line := range []string{"a\n", "b\n"} {
		f, err := OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "a\nb\n" {
		t.Fatalf("file holds %q (%v), want two appended lines", b, err)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// A link is refused whatever it points at, and nothing is created or changed through it.
func TestOpenFileRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	existing := filepath.Join(other, "existing")
	if err := os.WriteFile(existing, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target string
	}{
		{"to a file", existing},
		{"dangling", filepath.Join(other, "missing")},
		{"relative, to a file", filepath.Join("..", filepath.Base(other), "existing")},
		{"to a folder", other},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link := filepath.Join(dir, "link"+string(rune('a'+i)))
			symlink(t, tt.target, link)
			for _, flag := range []int{os.O_RDWR | os.O_CREATE, os.O_WRONLY | os.O_APPEND | os.O_CREATE, os.O_WRONLY | os.O_CREATE | os.O_TRUNC} {
				f, err := OpenFile(link, flag, 0o600)
				if err == nil {
					f.Close()
					t.Fatalf("flag %#x: the link was followed", flag)
				}
				if !errors.Is(err, errLink) || !strings.Contains(err.Error(), link) {
					t.Errorf("flag %#x: %v, want errLink naming %s", flag, err, link)
				}
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious\n" {
		t.Errorf("a link's target was changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(other, "missing")); err == nil {
		t.Error("a dangling link's target was created")
	}
}

// Other errors stay what they are.
func TestOpenFileOtherErrors(t *testing.T) {
	_, err := OpenFile(filepath.Join(t.TempDir(), "no", "such"), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil || errors.Is(err, errLink) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
}

func TestPrepareCreatesPrivateFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	if err := Prepare(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("not created: %v", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(filepath.Join(file, "state")); err == nil || !strings.Contains(err.Error(), "cannot be created") {
		t.Errorf("under a file: %v", err)
	}
	if err := check(file); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("a file: %v", err)
	}
}
