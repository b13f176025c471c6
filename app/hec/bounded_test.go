package hec_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// sendWithin is send, bounded: a delivery that would wait forever fails the test instead of
// hanging it.
func sendWithin(t *testing.T, d time.Duration, c *hec.Client, n, size int) (*result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res := &result{}
	bt := c.NewBatcher()
	start := time.Now()
	submit := func(b *hec.Batch) {
		if b == nil {
			return
		}
		if err := c.Submit(ctx, b, res.done); err != nil {
			res.done(hec.Outcome{Batch: b, Err: err})
		}
	}
	for i := 0; i < n; i++ {
		submit(bt.Add(alert(i, size)))
	}
	submit(bt.Flush())
	c.Wait()
	return res, time.Since(start)
}

// An ack that never comes, in the daemon (NoAckFails, or no give-up time): the batch is
// re-sent three times, then it fails with an error that says what to check, and its URL is
// set aside: the caller's next try waits for it (or goes to another URL: re-sends go round
// the URLs).
func TestAckNeverComesSetsURLAside(t *testing.T) {
	const setAside = time.Second
	for _, mode := range []struct {
		name string
		mod  func(*hec.Config)
	}{
		{"no give-up time", nil},
		{"give-up time and NoAckFails", func(c *hec.Config) { c.GiveUpAfter, c.NoAckFails = time.Minute, true }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			deaf := newHEC(t, hectest.Options{Ack: true})
			deaf.SetFailures(0, 0, 0, 1) // every ack stays false
			c := newClient(t, func(c *hec.Config) {
				c.AckTimeout = 100 * time.Millisecond
				c.SetAside = setAside
				c.MaxInFlight = 1
				if mode.mod != nil {
					mode.mod(c)
				}
			}, deaf.URL)
			res, took := sendWithin(t, 10*time.Second, c, 10, 500)
			_, _, errs := res.sum()
			if len(errs) != 1 || !errors.Is(errs[0], hec.ErrNoAck) {
				t.Fatalf("after %v: errors %v, want one carrying ErrNoAck", took, errs)
			}
			msg := errs[0].Error()
			for _, want := range []string{deaf.URL, "sent 4 times", "load balancer", "sticky", "restarted"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q: %s", want, msg)
				}
			}
			var he *hec.Error
			if !errors.As(errs[0], &he) || !he.Retryable() {
				t.Errorf("the error is not retryable: %#v", errs[0])
			}
			if st := deaf.Stats(); st.Requests != 4 || st.Distinct != 10 || st.Duplicates != 30 {
				t.Errorf("%d requests, %d indexed, %d duplicates; want 4 (three re-sends), 10, 30", st.Requests, st.Distinct, st.Duplicates)
			}
			// The caller tries again (the daemon's next poll), acks work again: the batch waits for
			// the URL to come back, then goes through.
			deaf.SetFailures(0, 0, 0, 0)
			res, took = sendWithin(t, 10*time.Second, c, 10, 500)
			if _, _, errs := res.sum(); len(errs) > 0 || took < setAside*9/10 {
				t.Errorf("errors %v; the next try took %v, want at least the set-aside time %v", errs, took, setAside)
			}
		})
	}
}

// A batch that gives up while waiting for a URL set aside by an earlier batch says why that
// URL rests (HEC's error), not only that time ran out, and keeps its kind: retryable.
func TestGiveUpWhileURLRestsSaysWhy(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true})
	srv.SetDown(true)
	c := newClient(t, func(c *hec.Config) {
		c.GiveUpAfter = 200 * time.Millisecond
		c.BackoffInitial, c.BackoffMax, c.SetAside = time.Minute, time.Minute, time.Minute
		c.MaxInFlight = 1
	}, srv.URL)
	for i, requests := range []int{1, 1} { // the second batch only waits: no request
		res, _ := sendWithin(t, 5*time.Second, c, 5, 200)
		_, _, errs := res.sum()
		if len(errs) != 1 {
			t.Fatalf("batch %d: errors %v, want one", i, errs)
		}
		var he *hec.Error
		if !errors.As(errs[0], &he) || !he.Retryable() || !strings.Contains(errs[0].Error(), "HTTP 503") {
			t.Errorf("batch %d: %v; want HEC's retryable 503", i, errs[0])
		}
		if got := srv.Stats().Requests; got != requests {
			t.Errorf("batch %d: %d requests in all, want %d", i, got, requests)
		}
	}
}

// OnRetry hears of every retryable failure, with the URL, HEC's error and how long the URL
// rests; the batch then goes through.
func TestOnRetryReportsEachRetry(t *testing.T) {
	var calls atomic.Int64
	srv := newHEC(t, hectest.Options{Ack: true})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/event") && calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusRequestTimeout) // a proxy that gave up waiting
			_, _ = io.WriteString(w, "<html>408 Request Time-out</html>")
			return
		}
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	type retry struct {
		url  string
		err  error
		wait time.Duration
	}
	got := make(chan retry, 10)
	c := newClient(t, func(c *hec.Config) {
		c.MaxInFlight = 1
		c.OnRetry = func(url string, err error, wait time.Duration) { got <- retry{url, err, wait} }
	}, front.URL)
	res, _ := sendWithin(t, 10*time.Second, c, 10, 200)
	if _, _, errs := res.sum(); len(errs) > 0 || srv.Stats().Distinct != 10 {
		t.Fatalf("errors %v, indexed %d of 10", errs, srv.Stats().Distinct)
	}
	close(got)
	n := 0
	for r := range got {
		n++
		var he *hec.Error
		if r.url != front.URL || !errors.As(r.err, &he) || he.Status != http.StatusRequestTimeout || !he.Retryable() || r.wait <= 0 {
			t.Errorf("OnRetry(%q, %v, %v): want the URL, a retryable 408 and a wait", r.url, r.err, r.wait)
		}
	}
	if n != 3 {
		t.Errorf("OnRetry called %d times, want 3", n)
	}
}

// Several URLs: a batch whose ack does not come goes to the next URL.
func TestAckNeverComesOnOneOfTwoURLs(t *testing.T) {
	deaf := newHEC(t, hectest.Options{Ack: true})
	deaf.SetFailures(0, 0, 0, 1)
	good := newHEC(t, hectest.Options{Ack: true})
	c := newClient(t, func(c *hec.Config) {
		c.AckTimeout = 100 * time.Millisecond
		c.BatchBytes = 8 << 10
		c.MaxInFlight = 2
	}, deaf.URL, good.URL)
	res, _ := sendWithin(t, 20*time.Second, c, 100, 1000)
	_, resent, errs := res.sum()
	if len(errs) > 0 || good.Stats().Distinct != 100 || deaf.Stats().Requests == 0 || resent != deaf.Stats().Indexed {
		t.Errorf("errors %v, indexed %d on the good URL (want 100), %d re-sent for %d indexed on the deaf one",
			errs, good.Stats().Distinct, resent, deaf.Stats().Indexed)
	}
}

// A give-up time bounds a batch whatever holds it.
func TestGiveUpBoundsEveryWait(t *testing.T) {
	const giveUp = 400 * time.Millisecond
	busyForAnHour := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"text":"Server is busy","code":9}`)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the URL
		mod   func(*hec.Config)
		want  []string
	}{
		{
			name: "ack never comes, ack timeout longer than the give-up time",
			setup: func(t *testing.T) string {
				s := newHEC(t, hectest.Options{Ack: true})
				s.SetFailures(0, 0, 0, 1)
				return s.URL
			},
			mod:  func(c *hec.Config) { c.AckTimeout = time.Minute },
			want: []string{"gave up after 400ms", "no indexer acknowledgement", "sticky"},
		},
		{
			name: "HEC slower than the give-up time",
			setup: func(t *testing.T) string {
				s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				}))
				t.Cleanup(s.Close)
				return s.URL
			},
			want: []string{"gave up after 400ms", "HEC http://127.0.0.1", "still being sent", "slow"},
		},
		{
			name: "ack never comes, short ack timeout",
			setup: func(t *testing.T) string {
				s := newHEC(t, hectest.Options{Ack: true})
				s.SetFailures(0, 0, 0, 1)
				return s.URL
			},
			mod:  func(c *hec.Config) { c.AckTimeout = 30 * time.Millisecond },
			want: []string{"gave up after 400ms", "no indexer acknowledgement"},
		},
		{
			name: "busy, Retry-After an hour",
			setup: func(t *testing.T) string {
				s := httptest.NewServer(http.HandlerFunc(busyForAnHour))
				t.Cleanup(s.Close)
				return s.URL
			},
			want: []string{"gave up after 400ms", "HTTP 503", "Server is busy"},
		},
		{
			name: "down, long backoff",
			setup: func(t *testing.T) string {
				s := newHEC(t, hectest.Options{})
				s.Close()
				return s.URL
			},
			mod: func(c *hec.Config) {
				c.BackoffInitial, c.BackoffMax, c.SetAside = time.Minute, time.Minute, time.Minute
			},
			want: []string{"gave up after 400ms", "connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.setup(t)
			c := newClient(t, func(c *hec.Config) {
				c.GiveUpAfter = giveUp
				if tt.mod != nil {
					tt.mod(c)
				}
			}, url)
			res, took := sendWithin(t, 10*time.Second, c, 5, 500)
			_, _, errs := res.sum()
			if len(errs) != 1 {
				t.Fatalf("after %v: errors %v, want one", took, errs)
			}
			for _, want := range tt.want {
				if !strings.Contains(errs[0].Error(), want) {
					t.Errorf("the error does not say %q: %v", want, errs[0])
				}
			}
			if took < giveUp || took > giveUp+time.Second {
				t.Errorf("delivery ended after %v; the give-up time is %v", took, giveUp)
			}
		})
	}
}

// A load balancer that keeps a channel on one indexer by cookie gets its cookie back on
// every send and ack poll, from each URL's own jar: here two balancers share a host name
// (cookies ignore ports), so one jar for both would hand each the other's cookie.
func TestStickyLoadBalancerGetsItsCookie(t *testing.T) {
	a := newHEC(t, hectest.Options{Ack: true, Sticky: true})
	b := newHEC(t, hectest.Options{Ack: true, Sticky: true})
	a.SetAckDelay(20 * time.Millisecond)
	b.SetAckDelay(20 * time.Millisecond)
	c := newClient(t, func(c *hec.Config) {
		c.BatchBytes = 16 << 10
		c.AckTimeout = 300 * time.Millisecond
		c.MaxInFlight = 4
	}, a.URL, b.URL)
	res, took := sendWithin(t, 20*time.Second, c, 1000, 1000)
	_, resent, errs := res.sum()
	sa, sb := a.Stats(), b.Stats()
	t.Logf("%v: requests %d+%d, ack polls %d+%d, without the cookie %d+%d, ack timeouts %d",
		took, sa.Requests, sb.Requests, sa.AckQueries, sb.AckQueries, sa.NoCookie, sb.NoCookie, c.Stats().AckTimeouts)
	if len(errs) > 0 || resent > 0 || c.Stats().AckTimeouts > 0 {
		t.Fatalf("errors %v, resent %d, ack timeouts %d: acks were polled without the balancer's cookie", errs, resent, c.Stats().AckTimeouts)
	}
	if sa.Distinct+sb.Distinct != 1000 || sa.Duplicates+sb.Duplicates != 0 || sa.Requests == 0 || sb.Requests == 0 {
		t.Errorf("indexed %d+%d, duplicates %d", sa.Distinct, sb.Distinct, sa.Duplicates+sb.Duplicates)
	}
	// Only the very first request to each balancer came without its cookie.
	if sa.NoCookie != 1 || sb.NoCookie != 1 {
		t.Errorf("requests without the balancer's cookie: %d and %d, want 1 each", sa.NoCookie, sb.NoCookie)
	}
}

// The sticky stand-in is as strict as a real cluster behind a sticky balancer: an ack poll
// without the cookie reaches an indexer that knows nothing of the channel.
func TestStandInStickyLoadBalancer(t *testing.T) {
	srv := newHEC(t, hectest.Options{Ack: true, Sticky: true})
	const ch = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
	jar, _ := cookiejar.New(nil)
	withJar := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	post := func(hc *http.Client, path, body string) string {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Splunk "+token)
		req.Header.Set("X-Splunk-Request-Channel", ch)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	if got := post(withJar, "/services/collector/event", `{"event":{"id":"x"}}`); !strings.Contains(got, `"ackId":0`) {
		t.Fatalf("event reply %s", got)
	}
	noJar := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		if got := post(noJar, "/services/collector/ack", `{"acks":[0]}`); got != `{"acks":{"0":false}}` {
			t.Errorf("ack poll without the cookie: %s, want false", got)
		}
	}
	if got := post(withJar, "/services/collector/ack", `{"acks":[0]}`); got != `{"acks":{"0":true}}` {
		t.Errorf("ack poll with the cookie: %s, want true", got)
	}
	if st := srv.Stats(); st.NoCookie != 4 {
		t.Errorf("%d requests without the cookie counted, want 4", st.NoCookie)
	}
}

// An ack reply is read no further than any other reply: a huge one is refused (here it would
// confirm the batch if it were read whole), and the server could write only about what the
// client read plus the socket buffers.
func TestHugeAckReplyIsNotRead(t *testing.T) {
	const huge = 64 << 20
	var most atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/collector/event", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"text":"Success","code":0,"ackId":0}`)
	})
	mux.HandleFunc("POST /services/collector/ack", func(w http.ResponseWriter, r *http.Request) {
		// {"acks":{"0":true,"1":false,"2":false,…}}: valid JSON, 64 MiB, written as it goes.
		n, _ := io.WriteString(w, `{"acks":{"0":true`)
		written := int64(n)
		chunk := []byte(strings.Repeat(`,"1":false`, 6500))
		for written < huge {
			n, err := w.Write(chunk)
			written += int64(n)
			if err != nil {
				break
			}
		}
		if written >= huge {
			_, _ = io.WriteString(w, `}}`)
		}
		for {
			if old := most.Load(); written <= old || most.CompareAndSwap(old, written) {
				break
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(t, func(c *hec.Config) {
		c.AckTimeout = 300 * time.Millisecond
		c.AckInterval = 100 * time.Millisecond
		c.MaxInFlight = 1
	}, srv.URL)
	res, took := sendWithin(t, 20*time.Second, c, 1, 500)
	_, _, errs := res.sum()
	if len(errs) != 1 || !errors.Is(errs[0], hec.ErrNoAck) {
		t.Fatalf("after %v: errors %v; want the batch unconfirmed (its only ack came in an oversized reply)", took, errs)
	}
	srv.CloseClientConnections()
	if w := most.Load(); w > 16<<20 {
		t.Errorf("the server could write %d MiB of one ack reply: the client read it", w>>20)
	}
}

// Remote text in errors (HEC's "text", a proxy's page) is cut short and holds no control or
// formatting characters that could rewrite a terminal or forge a log line.
func TestRemoteTextIsCleanAndShort(t *testing.T) {
	long := strings.Repeat("Invalid token ", 2000)
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"long text", 403, `{"text":"` + long + `","code":4}`, `"Invalid token Invalid token`},
		{"escape sequences", 403, `{"text":"Invalid \u001b[2J\u001b]0;pwned\u0007token\u009b31m\nERROR forged line","code":4}`, "Invalid [2J]0;pwnedtoken31m ERROR forged line"},
		{"bidirectional override", 403, `{"text":"token \u202eliated\u202c","code":4}`, "token liated"},
		{"proxy page", 404, "<html>\r\n<body>\x1b[31m" + strings.Repeat("<p>Not here</p>\n", 500) + "</body></html>", "<html> <body>[31m<p>Not here</p>"},
		{"invalid UTF-8", 403, "{\"text\":\"bad \xff\xfe token\",\"code\":4}", "bad \uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newClient(t, nil, srv.URL)
			res, _ := sendWithin(t, 10*time.Second, c, 1, 200)
			_, _, errs := res.sum()
			if len(errs) != 1 {
				t.Fatalf("errors %v", errs)
			}
			var he *hec.Error
			if !errors.As(errs[0], &he) {
				t.Fatalf("not a *hec.Error: %v", errs[0])
			}
			msg := errs[0].Error()
			if n := len([]rune(he.Text)); n > 201 {
				t.Errorf("the quoted text has %d characters", n)
			}
			if len(msg) > 1000 {
				t.Errorf("the message has %d bytes: %.200s…", len(msg), msg)
			}
			for _, r := range he.Text {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Errorf("control or format character %U in %q", r, he.Text)
				}
			}
			if !strings.Contains(he.Text, strings.Trim(tt.want, `"`)) {
				t.Errorf("text %q does not hold %q", he.Text, tt.want)
			}
		})
	}
}

// Each reply is classified once: what clears by itself (a proxy's 408 or 425 among them) is
// retried, what a person must fix is fatal.
func TestClassifyReplies(t *testing.T) {
	const busy = `{"text":"Server is busy","code":9}`
	tests := []struct {
		name   string
		status int
		body   string
		want   hec.Kind
	}{
		{"success", 200, `{"text":"Success","code":0,"ackId":3}`, hec.OK},
		{"cut-off 200", 200, `{"text":"Succ`, hec.Retry},
		{"proxy request timeout", 408, "<html>408 Request Time-out</html>", hec.Retry},
		{"request timeout, no body", 408, "", hec.Retry},
		{"too early", 425, "", hec.Retry},
		{"throttled", 429, "", hec.Retry},
		{"internal error", 500, "", hec.Retry},
		{"bad gateway", 502, "<html>bad gateway</html>", hec.Retry},
		{"busy", 503, busy, hec.Retry},
		{"gateway timeout", 504, "", hec.Retry},
		{"too large", 413, "", hec.TooLarge},
		{"partial", 400, `{"text":"Invalid data format","code":6,"invalid-event-number":2}`, hec.Partial},
		{"malformed", 400, `{"text":"Invalid data format","code":6}`, hec.Malformed},
		{"wrong index", 400, `{"text":"Incorrect index","code":7,"invalid-event-number":0}`, hec.Fatal},
		{"bad token", 403, `{"text":"Invalid token","code":4}`, hec.Fatal},
		{"no token", 401, `{"text":"Token is required","code":2}`, hec.Fatal},
		{"no HEC here", 404, "", hec.Fatal},
		{"method not allowed", 405, "", hec.Fatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := hec.ClassifyForTest(tt.status, []byte(tt.body))
			if got != tt.want {
				t.Errorf("HTTP %d %q classified %v, want %v", tt.status, tt.body, got, tt.want)
			}
		})
	}
}
