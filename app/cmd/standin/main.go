// Command standin runs the Defender and HEC stand-ins in a process of their own, for the
// benchmark and fault suites: a backlog of alerts made on demand (rendered per request, not
// held as JSON), quotas lifted, and a control port that reports what HEC indexed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hectest"
)

func main() {
	n := flag.Int("alerts", 10000, "alerts in the backlog")
	days := flag.Float64("days", 3, "the backlog's lastUpdateTime spread, in days, ending now")
	ack := flag.Bool("ack", true, "the HEC token has indexer acknowledgement")
	tenant := flag.String("tenant", "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "tenant id")
	client := flag.String("client", "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", "client id")
	secret := flag.String("secret", "bench-secret", "client secret")
	token := flag.String("hec-token", "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8", "HEC token")
	order := flag.String("order", "lastupdate", "the API's list order: lastupdate, lastupdate-ties, oldest, shuffled, created or id")
	revisit := flag.Int("revisit", 0, "give every n-th alert a later second version, so that creation and lastUpdateTime orders differ (0: none)")
	flag.Parse()
	ord, err := defendertest.ParseOrder(*order)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin: -order:", err)
		os.Exit(2)
	}

	api := defendertest.New(defendertest.Options{TenantID: *tenant, ClientID: *client, ClientSecret: *secret,
		PerMinute: 1 << 30, PerHour: 1 << 30, TokenLifetime: time.Hour})
	now := time.Now()
	span := time.Duration(*days * 24 * float64(time.Hour))
	api.AddAlerts(*n, func(i int) time.Time { return now.Add(-span).Add(time.Duration(i) * (span / time.Duration(*n))) })
	if *revisit > 0 {
		api.Revisit(*revisit, now)
	}
	api.SetOrder(ord)
	key := func(raw []byte) string {
		// id@lastUpdateTime without a full decode: the stand-in must not be the bottleneck.
		var a struct {
			ID  string `json:"id"`
			LUT string `json:"lastUpdateTime"`
		}
		_ = json.Unmarshal(raw, &a)
		return a.ID + "@" + a.LUT
	}
	hec := hectest.New(hectest.Options{Token: *token, Ack: *ack, CountOnly: true, Key: key})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		a, h := api.Stats(), hec.Stats()
		_ = json.NewEncoder(w).Encode(map[string]any{"api_calls": a.APICalls, "api_by_status": a.ByStatus, "api_bytes": a.BytesOut, "api_alerts": a.AlertsReturned,
			"hec_requests": h.Requests, "indexed": h.Indexed, "distinct": h.Distinct, "duplicates": h.Duplicates})
	})
	go func() { _ = http.Serve(ln, mux) }()
	// One line for the harness: where everything is.
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"api": api.URL, "hec": hec.URL, "control": "http://" + ln.Addr().String()})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	api.Close()
	hec.Close()
}
