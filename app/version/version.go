// Package version holds the one version number of the app and the build facts build.sh
// stamps into the binary; build.sh and the Splunk package files agree with them.
package version

import (
	"fmt"
	"runtime"
)

// Version is the app's version (semantic versioning).
const Version = "0.1.0"

// Commit and Modified are set by build.sh with -ldflags -X, from git rev-parse HEAD and
// git status --porcelain: explicitly, because Go's own VCS stamping is off where
// -buildvcs=false is set and absent outside a checkout. An unstamped build says "unknown".
var (
	Commit   = "unknown"
	Modified = "" // "true" when the tree had uncommitted changes, "false" when clean
)

// Describe is what `defender_alerts version` prints: the version, the commit (marked
// "modified" when built from a changed tree) and the Go release that compiled it.
func Describe() string {
	commit := Commit
	if commit == "" {
		commit = "unknown"
	}
	if Modified == "true" {
		commit += " (modified)"
	}
	return fmt.Sprintf("defender_alerts %s\ncommit: %s\ngo: %s\n", Version, commit, runtime.Version())
}
