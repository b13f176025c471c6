// Package statedir owns the rules for the collector's state folder: the folder must be private
// to the user running the collector, and the files the collector opens there by a fixed name
// (the checkpoint lock, the dead-letter file) are opened without following links, so that
// whoever can plant a link cannot make the collector create, truncate or append to another file.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// errLink means a state file's path is a symbolic link (or, on Windows, a reparse point).
var errLink = errors.New("is a link")

// errUnsafe means the state folder can be changed by users other than the collector's.
var errUnsafe = errors.New("is not private to the user running the collector")

// Prepare creates dir (0700) if it does not exist, then checks that it is safe to keep state in.
func Prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state folder %s cannot be created: %w", dir, err)
	}
	return check(dir)
}

// check refuses a state folder that users other than the collector's can write to: on Unix, one
// writable by group or others, or owned by another user. Anyone who can write there can swap
// the checkpoint (re-sending or skipping alerts) or plant links. A link to a folder is followed:
// the folder it names is the one checked.
func check(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state folder %s cannot be read: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state folder %s is not a folder", dir)
	}
	return checkOwner(dir, fi)
}

// OpenFile opens a file in the state folder like os.OpenFile, except that if path is a link it
// opens nothing, creates nothing, and returns an error that says so.
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := openNoFollow(path, flag, perm)
	if err == nil {
		return f, nil
	}
	// O_NOFOLLOW reports a link as ELOOP on Linux and macOS, EMLINK on FreeBSD; Lstat says it
	// the same way everywhere.
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		return nil, linkError(path)
	}
	return nil, err
}

func linkError(path string) error {
	return fmt.Errorf("%s %w: the state folder must hold only the collector's own files; remove the link (and find out who made it)", path, errLink)
}
