package main

import (
	"context"
	"fmt"
	"io"

	"ta-defender-alerts/app/version"
)

const usage = `defender_alerts pulls Microsoft Defender for Endpoint alerts into Splunk.

Usage:
  defender_alerts version   print the version
  defender_alerts help      print this help

The collector commands (run, check, demo) and the Splunk modular input are not built yet.
`

// run is the whole program behind main, so tests can drive it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	_ = ctx
	_ = stdin
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	switch args[0] {
	case "version", "--version":
		fmt.Fprintf(stdout, "defender_alerts %s\n", version.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "defender_alerts: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
