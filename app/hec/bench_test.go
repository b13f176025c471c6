package hec_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// typical makes a ~3 KB alert-like object whose hashes, ids, paths and times vary as real
// alerts' do, so that gzip is not flattered by repetition.
func typical(i int, r *mrand.Rand) hec.Record {
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for k := range b {
			b[k] = digits[r.IntN(16)]
		}
		return string(b)
	}
	var ev strings.Builder
	id := fmt.Sprintf("da%018d_%d", 637000000000000000+i, r.Int32())
	fmt.Fprintf(&ev, `{"id":%q,"incidentId":%d,"investigationId":null,"assignedTo":null,"severity":"Medium","status":"New",`, id, r.IntN(1e7))
	fmt.Fprintf(&ev, `"classification":null,"determination":null,"investigationState":"Queued","detectionSource":"WindowsDefenderAtp","detectorId":"%s-%s-%s-%s-%s",`, hex(8), hex(4), hex(4), hex(4), hex(12))
	fmt.Fprintf(&ev, `"category":"Execution","threatFamilyName":null,"title":"Suspicious process %d launched","description":"A process with a low-reputation binary started from an unusual location. Investigate the process tree, the file's prevalence and the account that started it.",`, r.IntN(500))
	ts := time.Unix(1700000000+int64(i), int64(r.IntN(1e9))).UTC().Format(time.RFC3339Nano)
	fmt.Fprintf(&ev, `"alertCreationTime":%q,"firstEventTime":%q,"lastEventTime":%q,"lastUpdateTime":%q,"resolvedTime":null,`, ts, ts, ts, ts)
	fmt.Fprintf(&ev, `"machineId":%q,"computerDnsName":"ws%05d.corp.contoso.com","rbacGroupName":"Workstations","aadTenantId":"%s-%s-%s-%s-%s","threatName":null,`, hex(40), r.IntN(99999), hex(8), hex(4), hex(4), hex(4), hex(12))
	fmt.Fprintf(&ev, `"mitreTechniques":["T1059.001","T1204.002"],"relatedUser":{"userName":"user%d","domainName":"CONTOSO"},"comments":[],"evidence":[`, r.IntN(5000))
	for k := 0; k < 4; k++ {
		if k > 0 {
			ev.WriteByte(',')
		}
		fmt.Fprintf(&ev, `{"entityType":"File","evidenceCreationTime":%q,"sha1":%q,"sha256":%q,"fileName":"tool%d.exe","filePath":"C:\\Users\\user%d\\AppData\\Local\\Temp\\%s","processId":%d,"processCommandLine":"tool%d.exe -enc %s","processCreationTime":%q,"parentProcessId":%d,"parentProcessCreationTime":null,"parentProcessFileName":"explorer.exe","parentProcessFilePath":"C:\\Windows","ipAddress":null,"url":null,"registryKey":null,"registryHive":null,"registryValueType":null,"registryValue":null,"accountName":"user%d","domainName":"CONTOSO","userSid":"S-1-5-21-%d-%d-%d-%d","aadUserId":null,"userPrincipalName":"user%d@contoso.com","detectionStatus":"Detected"}`,
			ts, hex(40), hex(64), r.IntN(100), r.IntN(5000), hex(8), r.IntN(65535), r.IntN(100), hex(24), ts, r.IntN(65535), r.IntN(5000), r.Int32(), r.Int32(), r.Int32(), r.IntN(100000), r.IntN(5000))
	}
	ev.WriteString(`]}`)
	return hec.Record{Time: time.Unix(1700000000+int64(i), 0), Event: []byte(ev.String()), ID: id}
}

func records(n int) []hec.Record {
	r := mrand.New(mrand.NewPCG(1, 2))
	out := make([]hec.Record, n)
	for i := range out {
		out[i] = typical(i, r)
	}
	return out
}

// BenchmarkEncodeGzip measures the CPU of shaping envelopes and compressing them, per alert.
func BenchmarkEncodeGzip(b *testing.B) {
	recs := records(3000)
	c := newClient(b, nil, "https://splunk.example.com:8088")
	var size int
	for _, r := range recs {
		size += len(r.Event)
	}
	b.SetBytes(int64(size / len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	bt := c.NewBatcher()
	var raw, zipped int
	for i := 0; i < b.N; i++ {
		if full := bt.Add(recs[i%len(recs)]); full != nil {
			z := hec.CompressForTest(c, full)
			raw, zipped = raw+full.Size(), zipped+len(z)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "µs/alert")
	if zipped > 0 {
		b.ReportMetric(float64(raw)/float64(zipped), "gzip-ratio")
	}
}

// BenchmarkSend100k sends 100,000 typical alerts to the HEC stand-in on loopback, batched
// and gzip'd, and reports events/s and MB/s (uncompressed) with and without acks.
func BenchmarkSend100k(b *testing.B) {
	recs := records(100000)
	var size int
	for _, r := range recs {
		size += len(r.Event)
	}
	for _, tc := range []struct {
		ack      bool
		inFlight int
	}{{false, 1}, {true, 1}, {false, 8}, {true, 8}} {
		b.Run(fmt.Sprintf("ack=%v/inflight=%d", tc.ack, tc.inFlight), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				srv := newHEC(b, hectest.Options{Ack: tc.ack, CountOnly: true})
				c := newClient(b, func(c *hec.Config) { c.MaxInFlight = tc.inFlight; c.AckInterval = time.Second }, srv.URL)
				bt := c.NewBatcher()
				res := &result{}
				start := time.Now()
				for _, r := range recs {
					if full := bt.Add(r); full != nil {
						if err := c.Submit(context.Background(), full, res.done); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := c.Submit(context.Background(), bt.Flush(), res.done); err != nil {
					b.Fatal(err)
				}
				c.Wait()
				el := time.Since(start)
				if st := srv.Stats(); st.Distinct != len(recs) {
					b.Fatalf("indexed %d of %d", st.Distinct, len(recs))
				}
				b.ReportMetric(float64(len(recs))/el.Seconds(), "events/s")
				b.ReportMetric(float64(size)/el.Seconds()/1e6, "MB/s")
				b.ReportMetric(float64(size)/float64(len(recs)), "bytes/event")
			}
		})
	}
}

// FuzzReply feeds HEC replies to the classifier: it never panics and always classifies.
func FuzzReply(f *testing.F) {
	for _, s := range []string{`{"text":"Success","code":0,"ackId":3}`, `{"text":"Invalid data format","code":6,"invalid-event-number":2}`,
		`{"text":"Incorrect index","code":7,"invalid-event-number":0}`, `<html>bad gateway</html>`, ``, `{"acks":{"0":true}}`} {
		for _, status := range []int{200, 400, 403, 413, 429, 503} {
			f.Add(status, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		kind, ok := hec.ClassifyForTest(status, body)
		if !ok && status != 200 {
			t.Fatalf("status %d not classified", status)
		}
		if status == 200 && ok && kind != hec.OK && kind != hec.Retry {
			t.Fatalf("200 classified as %v", kind)
		}
	})
}
