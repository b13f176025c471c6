package checkpoint

import (
	"fmt"
	"os"
	"strings"
	"time"

	"ta-defender-alerts/app/statedir"
)

// lockFile is an OS lock on a file beside the checkpoint. The OS releases it when the process
// ends in any way (SIGKILL included), so a crash never leaves a stale lock.
type lockFile struct {
	f    *os.File
	path string
}

func acquire(path string) (*lockFile, error) {
	f, err := statedir.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("checkpoint lock %s cannot be opened: %w", path, err)
	}
	if err := lockFD(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another process"
		}
		return nil, fmt.Errorf("%w: %s is held by %s; run each input in one process only", errLocked, path, who)
	}
	host, _ := os.Hostname()
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))), 0)
	return &lockFile{f: f, path: path}, nil
}

func (l *lockFile) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := unlockFD(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
