package siem_test

import (
	"strings"
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

// BenchmarkCEFAppendFit is the encoding with a size, per detection: lines that fit (the
// sample's, under a TCP size) and lines shortened to fit a UDP datagram (a 3,000-character
// command line and description).
func BenchmarkCEFAppendFit(b *testing.B) {
	enc := siem.NewCEF(siem.CEFOptions{})
	long := benchDetections(b)
	for i := range long {
		long[i].CommandLine = strings.Repeat(`C:\Windows\cmd.exe /c a=b `, 120)
		long[i].Description = long[i].CommandLine
	}
	for _, bc := range []struct {
		name string
		ds   []siem.Detection
		size int
	}{{"fits", benchDetections(b), 8192}, {"shortened", long, 1300}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var ok bool
				if buf, ok = enc.AppendFit(buf[:0], &bc.ds[i%len(bc.ds)], bc.size); !ok {
					b.Fatal("does not fit")
				}
				i++
			}
		})
	}
}
