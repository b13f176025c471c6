package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/defendertest"
)

// demoReceiver is the demo's syslog receiver: RFC 5425 octet-counted frames over TCP, each
// an RFC 5424 message whose MSG is one CEF or LEEF detection. It keeps every MSG, counts the
// alert versions they come from (the alert id in the detection, the version's time in the
// TIMESTAMP), and hands the first few to the demo to show as they arrive.
type demoReceiver struct {
	ln    net.Listener
	shown chan string
	wg    sync.WaitGroup

	mu       sync.Mutex
	msgs     []string
	versions map[string]int // "alertId@timestamp": detections received
	bad      []string       // frames or messages that are not what the collector should send
	conns    []net.Conn
}

const demoShown = 4 // detections shown as they arrive

func newDemoReceiver() (*demoReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &demoReceiver{ln: ln, shown: make(chan string, demoShown), versions: map[string]int{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go r.read(c)
		}
	}()
	return r, nil
}

func (r *demoReceiver) Addr() string { return r.ln.Addr().String() }

// Shown gives the first detections received, as they arrive; nil (never ready) for no receiver.
func (r *demoReceiver) Shown() <-chan string {
	if r == nil {
		return nil
	}
	return r.shown
}

func (r *demoReceiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *demoReceiver) Close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *demoReceiver) read(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	in := bufio.NewReader(c)
	for {
		frame, err := readOctetCounted(in)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.note("", err)
			}
			return
		}
		msg, key, err := parseDemoMessage(frame)
		r.note(msg, err)
		if err != nil {
			continue
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, msg)
		r.versions[key]++
		if len(r.msgs) <= demoShown {
			r.shown <- msg // room for demoShown
		}
		r.mu.Unlock()
	}
}

func (r *demoReceiver) note(msg string, err error) {
	if err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, fmt.Sprintf("%v: %.120q", err, msg))
		r.mu.Unlock()
	}
}

// readOctetCounted reads one RFC 5425 frame: MSG-LEN SP SYSLOG-MSG.
func readOctetCounted(in *bufio.Reader) ([]byte, error) {
	n := 0
	for i := 0; ; i++ {
		b, err := in.ReadByte()
		switch {
		case err != nil:
			return nil, err
		case b == ' ' && i > 0:
			frame := make([]byte, n)
			_, err := io.ReadFull(in, frame)
			return frame, err
		case b < '0' || b > '9' || i > 6:
			return nil, fmt.Errorf("not an octet-counted frame (byte %q)", b)
		}
		n = n*10 + int(b-'0')
	}
}

// parseDemoMessage takes apart the RFC 5424 message the collector writes (no structured
// data): its MSG, and the key of the alert version it carries, "alertId@TIMESTAMP".
func parseDemoMessage(frame []byte) (msg, key string, err error) {
	f := strings.SplitN(string(frame), " ", 8)
	if len(f) < 8 || !strings.HasPrefix(f[0], "<") || !strings.HasSuffix(f[0], ">1") || f[5] != "detection" || f[6] != "-" {
		return string(frame), "", errors.New("not an RFC 5424 detection message")
	}
	t, err := time.Parse(time.RFC3339Nano, f[1])
	if err != nil {
		return f[7], "", fmt.Errorf("TIMESTAMP: %w", err)
	}
	msg = f[7]
	var id string
	switch {
	case strings.HasPrefix(msg, "CEF:0|"):
		_, id, _ = strings.Cut(msg, " externalId=")
		id, _, _ = strings.Cut(id, " ")
	case strings.HasPrefix(msg, "LEEF:2.0|"):
		_, id, _ = strings.Cut(msg, "^AlertId=")
		id, _, _ = strings.Cut(id, "^")
	}
	if id == "" {
		return msg, "", errors.New("neither CEF with externalId nor LEEF with AlertId")
	}
	return msg, syslogVersion(id, t), nil
}

// summary waits for what is still on its way, then says what arrived: every current alert
// version must have, and nothing the receiver could not read.
func (r *demoReceiver) summary(w io.Writer, dir string, api *defendertest.Server, ps bridge.Stats, apiCalls int, cpPath string) int {
	for last, quiet := r.Count(), 0; quiet < 3; quiet++ { // written and flushed is not yet read
		time.Sleep(100 * time.Millisecond)
		if n := r.Count(); n != last {
			last, quiet = n, 0
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	current := api.Current(time.Now())
	missing := 0
	for id, v := range current {
		if r.versions[syslogVersion(id, v.LastUpdate)] == 0 {
			missing++
		}
	}
	path := filepath.Join(dir, "syslog.txt")
	_ = os.WriteFile(path, []byte(strings.Join(r.msgs, "\n")+"\n"), 0o600)
	fmt.Fprintf(w, "\nSummary\n")
	fmt.Fprintf(w, "  alerts in the tenant now        %d (each update is a new version, and new detections)\n", len(current))
	fmt.Fprintf(w, "  detections received             %d (one message each; %d alert versions)\n", len(r.msgs), len(r.versions))
	fmt.Fprintf(w, "  current versions missing        %d\n", missing)
	fmt.Fprintf(w, "  messages not understood         %d\n", len(r.bad))
	fmt.Fprintf(w, "  dead-lettered (too large)       %d\n", ps.Rejected)
	fmt.Fprintf(w, "  API calls                       %d\n", apiCalls)
	fmt.Fprintf(w, "  checkpoint                      %s (watermark %s)\n", cpPath, ps.Watermark.Format(time.RFC3339))
	if len(r.msgs) > 0 {
		fmt.Fprintf(w, "\nThe last detection received:\n  %s\n", r.msgs[len(r.msgs)-1])
	}
	for _, b := range r.bad {
		fmt.Fprintf(w, "  not understood: %s\n", b)
	}
	fmt.Fprintf(w, "\nEvery detection received is in %s\nThe collector's log is in %s\n", path, filepath.Join(dir, "defender_alerts.log"))
	if missing > 0 || len(r.bad) > 0 || len(r.msgs) == 0 {
		return 1
	}
	return 0
}

// syslogVersion names an alert version: its id and time to the microsecond (the TIMESTAMP's
// precision).
func syslogVersion(id string, t time.Time) string {
	return id + "@" + t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}
