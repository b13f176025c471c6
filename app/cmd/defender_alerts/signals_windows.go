//go:build windows

package main

import "os"

// Windows services and consoles deliver Ctrl+C and Ctrl+Break as os.Interrupt.
var stopSignals = []os.Signal{os.Interrupt}
