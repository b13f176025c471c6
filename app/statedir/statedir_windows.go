//go:build windows

package statedir

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// checkOwner has nothing to check from mode bits on Windows: access there is the folder's ACL,
// which the installer sets (and ProgramData's defaults keep to administrators and SYSTEM).
func checkOwner(string, fs.FileInfo) error { return nil }

// openNoFollow opens the link itself, never its target (FILE_FLAG_OPEN_REPARSE_POINT), then
// refuses it if it is a reparse point (a symbolic link or a junction). Opening a link this way
// creates and truncates nothing.
func openNoFollow(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|windows.FILE_FLAG_OPEN_REPARSE_POINT, perm)
	if err != nil {
		return nil, err
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &info); err != nil {
		f.Close()
		return nil, err
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		f.Close()
		return nil, linkError(path)
	}
	return f, nil
}
