// Command defender_alerts pulls Microsoft Defender for Endpoint alerts into Splunk.
package main

import (
	"context"
	"os"
	"os/signal"

	"ta-defender-alerts/app/memlimit"
)

func main() {
	memlimit.Default(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
