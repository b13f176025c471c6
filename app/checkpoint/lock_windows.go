//go:build windows

package checkpoint

import (
	"os"

	"golang.org/x/sys/windows"
)

func lockFD(f *os.File) error {
	ol := new(windows.Overlapped)
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
}

func unlockFD(f *os.File) error {
	ol := new(windows.Overlapped)
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
}

// syncDir is not needed on Windows: NTFS makes the rename durable with the file's metadata,
// and folders cannot be opened for Sync.
func syncDir(string) error { return nil }
