//go:build unix

package statedir

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// geteuid is the user running the collector; tests may pretend to be someone else.
var geteuid = os.Geteuid

func checkOwner(dir string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if me := geteuid(); int(st.Uid) != me {
			return fmt.Errorf("state folder %s %w: it belongs to %s, and the collector runs as %s; "+
				"run the collector as the folder's owner, or give it the folder (as root: chown %s %s)",
				dir, errUnsafe, userName(int(st.Uid)), userName(me), strconv.Itoa(me), dir)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		who := "group and others"
		switch {
		case perm&0o002 == 0:
			who = "its group"
		case perm&0o020 == 0:
			who = "others"
		}
		mode := uint32(perm)
		if fi.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		return fmt.Errorf("state folder %s %w: it is writable by %s (mode %04o); run chmod 700 %s",
			dir, errUnsafe, who, mode, dir)
	}
	return nil
}

// userName is "uid 1000 (splunk)", or "uid 1000" when the name cannot be found.
func userName(uid int) string {
	s := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		s += " (" + u.Username + ")"
	}
	return s
}

func openNoFollow(path string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
}
