//go:build unix

package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
)

// Pinning for the feeds part (-feed-pin). The stand-in serving the Graph feed works about
// three times as hard as for the endpoint feed (it filters and renders 500-alert pages 250
// times: 30 s of CPU against 11 s for 100,000 alerts), and on a small machine it shares the
// product's cores: the product's own work then costs it more CPU time (caches and cores taken
// in turn), the more so the harder the stand-in works. A production collector's APIs are on
// other machines. With pinning on, the stand-in runs on the first CPU and the product on the
// others, so each feed's CPU is the product's work alone; off, both share every CPU (as in the
// other parts of the bench).

type pinning struct {
	on               bool
	standin, product []string // command prefixes (taskset -c …), nil when off
	about            string   // for the report
}

// feedPinning reads the -feed-pin setting: auto (on where it can be: Linux, 2 CPUs or more,
// taskset installed), on (fail where it cannot be), off.
func feedPinning(mode string) (pinning, error) {
	switch mode {
	case "off":
		return pinning{about: "not pinned: the stand-in and the product share every CPU"}, nil
	case "auto", "on":
	default:
		return pinning{}, fmt.Errorf("-feed-pin %q: want auto, on or off", mode)
	}
	taskset, err := exec.LookPath("taskset")
	n := runtime.NumCPU()
	if runtime.GOOS != "linux" || n < 2 || err != nil {
		why := fmt.Sprintf("pinning needs Linux, 2 CPUs and taskset (here %s, %d CPUs, taskset: %v)", runtime.GOOS, n, err == nil)
		if mode == "on" {
			return pinning{}, fmt.Errorf("-feed-pin on: %s", why)
		}
		return pinning{about: "not pinned: " + why}, nil
	}
	others := "1"
	if n > 2 {
		others = "1-" + strconv.Itoa(n-1)
	}
	return pinning{on: true,
		standin: []string{taskset, "-c", "0"},
		product: []string{taskset, "-c", others},
		about:   fmt.Sprintf("pinned: the stand-in on CPU 0, the product on CPU %s (of %d)", others, n),
	}, nil
}

// command is name with args, behind the prefix (taskset execs the program in its own process:
// the rusage measured is the program's).
func command(prefix []string, name string, args ...string) (string, []string) {
	if len(prefix) == 0 {
		return name, args
	}
	return prefix[0], append(append(append([]string(nil), prefix[1:]...), name), args...)
}
