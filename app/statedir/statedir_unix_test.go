//go:build unix

package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheckModes(t *testing.T) {
	tests := []struct {
		name string
		give os.FileMode
		want string // in the error; "" means accepted
	}{
		{"private", 0o700, ""},
		{"read-only", 0o500, ""},
		{"readable and searchable by all", 0o755, ""},
		{"group may search", 0o710, ""},
		{"group-writable", 0o770, "writable by its group (mode 0770)"},
		{"world-writable", 0o707, "writable by others (mode 0707)"},
		{"writable by all", 0o777, "writable by group and others (mode 0777)"},
		{"like /tmp", os.ModeSticky | 0o777, "(mode 1777)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.give); err != nil {
				t.Fatal(err)
			}
			err := Prepare(dir)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errUnsafe) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "run chmod 700 "+dir) {
				t.Errorf("err = %v, want errUnsafe saying %q and how to fix it", err, tt.want)
			}
		})
	}
}

// A folder owned by someone else is refused, even if its mode is private: its owner can do
// anything in it.
func TestCheckOwner(t *testing.T) {
	dir := t.TempDir()
	me := os.Geteuid()
	defer func() { geteuid = os.Geteuid }()
	geteuid = func() int { return me + 1 } // the collector runs as another user than the owner
	err := check(dir)
	if !errors.Is(err, errUnsafe) || !strings.Contains(err.Error(), "belongs to uid "+strconv.Itoa(me)) ||
		!strings.Contains(err.Error(), "chown "+strconv.Itoa(me+1)+" "+dir) {
		t.Errorf("err = %v, want errUnsafe naming the owner and the chown that fixes it", err)
	}
	geteuid = os.Geteuid
	if err := check(dir); err != nil {
		t.Errorf("own folder: %v", err)
	}
}

// A link to a private folder is fine: the folder it names is what is checked.
func TestCheckFollowsFolderLink(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "state")
	symlink(t, real, link)
	if err := check(link); err != nil {
		t.Errorf("link to a private folder: %v", err)
	}
	if err := os.Chmod(real, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := check(link); !errors.Is(err, errUnsafe) {
		t.Errorf("link to an open folder: %v", err)
	}
}
