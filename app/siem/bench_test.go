package siem_test

import (
	"testing"

	"ta-defender-alerts/app/siem"
)

// BenchmarkAlertToCEF is the whole path on Microsoft's sample alert (three evidence items):
// alert JSON -> detections -> one CEF line each, into a reused buffer.
func BenchmarkAlertToCEF(b *testing.B) {
	alert := sampleAlerts(b, "mde_alert_get_by_id.verbatim.json")[0]
	enc := siem.NewCEF(siem.CEFOptions{})
	var buf []byte
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		ds, err := siem.Build(alert)
		if err != nil {
			b.Fatal(err)
		}
		for i := range ds {
			buf = enc.Append(buf[:0], &ds[i])
		}
		n += len(ds)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/detection")
}

// benchDetections are the sample alert's detections.
func benchDetections(b *testing.B) []siem.Detection {
	ds, err := siem.Build(sampleAlerts(b, "mde_alert_get_by_id.verbatim.json")[0])
	if err != nil {
		b.Fatal(err)
	}
	return ds
}

// BenchmarkCEFAppend is the encoding alone, per detection (issue 14's goal: at most 5 µs).
func BenchmarkCEFAppend(b *testing.B) {
	ds := benchDetections(b)
	enc := siem.NewCEF(siem.CEFOptions{})
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = enc.Append(buf[:0], &ds[i%len(ds)])
		i++
	}
}

// BenchmarkLEEFAppend is LEEF's encoding alone, per detection.
func BenchmarkLEEFAppend(b *testing.B) {
	ds := benchDetections(b)
	enc, err := siem.NewLEEF(siem.LEEFOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = enc.Append(buf[:0], &ds[i%len(ds)])
		i++
	}
}

// BenchmarkDetectionJSON is the detection event's JSON, per detection.
func BenchmarkDetectionJSON(b *testing.B) {
	ds := benchDetections(b)
	var buf []byte
	var err error
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if buf, err = ds[i%len(ds)].AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
