package syslog

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ta-defender-alerts/app/splunkdtest"
)

// TestFaultRsyslog delivers to a real rsyslogd (Debian's rsyslog, and rsyslog-gnutls for
// TLS) on loopback, over TCP and TLS, restarts the daemon twice mid-run, and reads back the
// file it wrote: every message must be there at least once (duplicates counted). It runs in
// ./build.sh faults only (FAULTS_FULL set), and says so when rsyslog is missing.
func TestFaultRsyslog(t *testing.T) {
	if os.Getenv("FAULTS_FULL") == "" {
		t.Skip("a fault test: ./build.sh faults runs it")
	}
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr != nil {
			fmt.Println("FAULT rsyslog: rsyslog is not installed: skipping (apt-get install rsyslog rsyslog-gnutls)")
			t.Skip("rsyslog is not installed: skipping")
		}
		bin = "/usr/sbin/rsyslogd"
	}
	n := 20000
	if os.Getenv("FAULTS_FULL") != "1" {
		n = 4000
	}
	t.Run("tcp", func(t *testing.T) { faultRsyslog(t, bin, "tcp", n, 0) })
	t.Run("tls", func(t *testing.T) {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			fmt.Println("FAULT rsyslog tls: rsyslog-gnutls is not installed: skipping")
			t.Skip("rsyslog-gnutls is not installed: skipping")
		}
		faultRsyslog(t, bin, "tls", n, 0)
	})
	// The control: the same without re-sending shows what the restarts lose in flight (if
	// nothing, the runs above prove less than they seem to).
	t.Run("control", func(t *testing.T) { faultRsyslog(t, bin, "tcp", n, time.Nanosecond) })
}

// rsyslogd is a private daemon: its own configuration, work folder, pid file and output.
type rsyslogd struct {
	t        *testing.T
	bin, dir string
	port     int
	cmd      *exec.Cmd
	log      *os.File
}

const rsyslogConf = `global(workDirectory="{{dir}}/work" maxMessageSize="64k"{{tls}})
module(load="imtcp" maxSessions="50")
template(name="line" type="string" string="%msgid% %hostname% %app-name% %procid% %timereported:::date-rfc3339% %msg%\n")
ruleset(name="out") { action(type="omfile" file="{{dir}}/out.log" template="line") }
input(type="imtcp" address="127.0.0.1" port="{{port}}" ruleset="out"{{driver}})
`

func newRsyslogd(t *testing.T, bin, scheme string) (*rsyslogd, *Options) {
	d := &rsyslogd{t: t, bin: bin, dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	o := &Options{URL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, d.port), Hostname: "fault-host",
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, Timeout: 10 * time.Second}
	r := strings.NewReplacer("{{dir}}", d.dir, "{{port}}", strconv.Itoa(d.port), "{{tls}}", "", "{{driver}}", "")
	if scheme == "tls" {
		ca, err := splunkdtest.NewCA("Fault Syslog CA")
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.Issue(splunkdtest.Leaf{CN: "127.0.0.1", Hosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		var chain []byte
		for _, der := range leaf.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		files := map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": chain,
			"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(d.dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r = strings.NewReplacer("{{dir}}", d.dir, "{{port}}", strconv.Itoa(d.port),
			"{{tls}}", fmt.Sprintf(` defaultNetstreamDriverCAFile="%[1]s/ca.pem" defaultNetstreamDriverCertFile="%[1]s/server.pem" defaultNetstreamDriverKeyFile="%[1]s/server.key"`, d.dir),
			"{{driver}}", ` streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"`)
		o.CAFile = filepath.Join(d.dir, "ca.pem")
	}
	if err := os.Mkdir(filepath.Join(d.dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "rsyslog.conf"), []byte(r.Replace(rsyslogConf)), 0o600); err != nil {
		t.Fatal(err)
	}
	var err2 error
	if d.log, err2 = os.Create(filepath.Join(d.dir, "rsyslogd.log")); err2 != nil {
		t.Fatal(err2)
	}
	t.Cleanup(func() { d.stop() })
	return d, o
}

// start runs the daemon and waits until it listens.
func (d *rsyslogd) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.bin, "-n", "-f", filepath.Join(d.dir, "rsyslog.conf"), "-i", filepath.Join(d.dir, "rsyslogd.pid"))
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.port)); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.log.Name())
			d.t.Fatalf("rsyslogd does not listen on %d:\n%s", d.port, b)
		}
	}
}

// stop ends the daemon as a service manager does (SIGTERM) and waits for it.
func (d *rsyslogd) stop() { d.end(syscall.SIGTERM) }

// crash kills the daemon (SIGKILL): what it held in memory is gone.
func (d *rsyslogd) crash() { d.end(syscall.SIGKILL) }

func (d *rsyslogd) end(sig syscall.Signal) {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
	os.Remove(filepath.Join(d.dir, "rsyslogd.pid"))
}

// lines reads what the daemon wrote: the count of each sequence number, and the first line.
func (d *rsyslogd) lines() (map[int]int, string) {
	d.t.Helper()
	f, err := os.Open(filepath.Join(d.dir, "out.log"))
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	got, first := map[int]int{}, ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if first == "" {
			first = line
		}
		i := strings.Index(line, " seq=")
		if i < 0 {
			d.t.Errorf("line %q", line)
			continue
		}
		n, err := strconv.Atoi(strings.Fields(line[i+len(" seq="):])[0])
		if err != nil {
			d.t.Errorf("line %q", line)
			continue
		}
		got[n]++
	}
	return got, first
}

// faultRsyslog writes n messages, 100 every 100 ms (so that the 5 s re-send window covers
// a part of the run, as in production), restarting the daemon three times: stopped, killed,
// stopped.
func faultRsyslog(t *testing.T, bin, scheme string, n int, resend time.Duration) {
	started := time.Now()
	d, o := newRsyslogd(t, bin, scheme)
	o.Resend = resend
	d.start()
	var r reports
	w := newWriter(t, *o, &r)
	restarts := []int{n / 4, n / 2, 3 * n / 4}
	body := strings.Repeat("payload ", 20)
	for i := 0; i < n; i += 100 {
		write(t, w, i, i+100, body)
		if len(restarts) > 0 && i >= restarts[0] {
			if len(restarts) == 2 {
				d.crash()
			} else {
				d.stop()
			}
			restarts = restarts[1:]
			time.Sleep(300 * time.Millisecond) // down for a while: the writer backs off
			d.start()
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d.stop()
	got, first := d.lines()
	missing, dups := count(got, n)
	st := w.Stats()
	if resend > 0 {
		scheme += " without re-send (control)"
	}
	line := fmt.Sprintf("FAULT rsyslog %-4s expected %6d  delivered %6d  missing %d  duplicates %5d (%.2f%%)  resent %5d  connections %d  %5.1fs",
		scheme, n, n-missing, missing, dups, 100*float64(dups)/float64(n), st.Resent, st.Connects, time.Since(started).Seconds())
	fmt.Println(line)
	t.Log(line)
	if resend > 0 {
		if missing == 0 {
			t.Log("the control lost nothing: the restarts found nothing in flight")
		}
		return
	}
	if missing > 0 {
		t.Errorf("%d messages missing", missing)
	}
	if int64(dups) > st.Resent || st.Connects < 4 {
		t.Errorf("duplicates %d, stats %+v: every duplicate must be counted re-sent, and the daemon restarted three times", dups, st)
	}
	// rsyslog parsed the header: MSGID, HOSTNAME, APP-NAME, PROCID, TIMESTAMP as sent.
	want := fmt.Sprintf("detection fault-host defender_alerts %d %s seq=", os.Getpid(), t0.Format("2006-01-02T15:04:05.000000Z"))
	if !strings.HasPrefix(first, want[:len(want)-len(" seq=")]) {
		t.Errorf("rsyslog wrote %q, want it to start %q", first, want)
	}
}
