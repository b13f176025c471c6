package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestSentRemembersTheNewestVersionDelivered(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 123456700, time.UTC)
	m, err := OpenSent(filepath.Join(t.TempDir(), "x.sent"), 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do   string // "record" or "has"
		id   string
		t    time.Time
		want bool
	}{
		{"has", "da1", at, false},
		{"record", "da1", at, false},
		{"has", "da1", at, true},
		{"has", "da1", at.Add(100 * time.Nanosecond), false}, // a newer version: not sent
		{"has", "da1", at.Add(-time.Second), false},          // an older one never recorded: sent (never lost)
		{"has", "da2", at, false},
		{"record", "da1", at.Add(time.Minute), false},
		{"has", "da1", at.Add(time.Minute), true},
		{"has", "da1", at, false}, // one time per item: the older version is sent again if seen
	}
	for i, s := range steps {
		switch s.do {
		case "record":
			m.Record(s.id, s.t)
		case "has":
			if got := m.Has(s.id, s.t); got != s.want {
				t.Fatalf("step %d: Has(%s, %s) = %v, want %v", i, s.id, s.t.Format(time.RFC3339Nano), got, s.want)
			}
		}
	}
}

func TestSentSurvivesSaveAndMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.incidents.sent")
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	m, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = deltaMerge*2 + 77 // past the map's merge size twice
	for i := range n {
		m.Record(fmt.Sprintf("da%07d", i), at.Add(time.Duration(i)*time.Millisecond))
	}
	m.Record("da0000005", at.Add(time.Hour)) // replaces an entry already in the array
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("memory file mode %v, want 0600", fi.Mode().Perm())
	} else if want := int64(len(sentMagic) + n*sentBytes + 4); fi.Size() != want {
		t.Fatalf("memory file of %d bytes, want %d (16 per item)", fi.Size(), want)
	}
	back, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != n {
		t.Fatalf("%d items after a reload, want %d", back.Len(), n)
	}
	for i := range n {
		want := at.Add(time.Duration(i) * time.Millisecond)
		if i == 5 {
			want = at.Add(time.Hour)
		}
		if !back.Has(fmt.Sprintf("da%07d", i), want) {
			t.Fatalf("item %d lost across a save", i)
		}
	}
}

func TestSentForgetsByAgeAndSize(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "x.sent")
	m, _ := OpenSent(path, 30*24*time.Hour, 100, func() time.Time { return now })
	m.Record("old", now.Add(-31*24*time.Hour))
	for i := range 150 {
		m.Record(fmt.Sprintf("n%03d", i), now.Add(-time.Duration(150-i)*time.Minute))
	}
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if m.Has("old", now.Add(-31*24*time.Hour)) {
		t.Fatal("a version past the horizon is still remembered")
	}
	if m.Len() != 100 {
		t.Fatalf("%d items kept, want the limit of 100", m.Len())
	}
	if m.Has("n000", now.Add(-150*time.Minute)) || !m.Has("n149", now.Add(-time.Minute)) {
		t.Fatal("the size limit must drop the oldest versions first")
	}
}

func TestSentFileDamageIsAnErrorNamingIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.sent")
	m, _ := OpenSent(path, 0, 0, nil)
	m.Record("da1", time.Unix(1, 0))
	m.Record("da2", time.Unix(2, 0))
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	for name, b := range map[string][]byte{
		"cut short":  good[:len(good)-5],
		"bit flip":   append(append([]byte{}, good[:len(sentMagic)+3]...), append([]byte{good[len(sentMagic)+3] ^ 1}, good[len(sentMagic)+4:]...)...),
		"other file": []byte(`{"version":1}`),
	} {
		os.WriteFile(path, b, 0o600)
		if _, err := OpenSent(path, 0, 0, nil); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s", name, err, path)
		}
	}
}

func FuzzParseSent(f *testing.F) {
	m, _ := OpenSent(filepath.Join(f.TempDir(), "x.sent"), 0, 0, nil)
	m.Record("da1", time.Unix(1, 0))
	m.Record("da2", time.Unix(2, 0))
	m.Save()
	good, _ := os.ReadFile(m.path)
	f.Add(good)
	f.Add([]byte(sentMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := parseSent(b)
		if err != nil {
			return
		}
		for i := 1; i < len(es); i++ {
			if es[i].h <= es[i-1].h {
				t.Fatal("accepted entries out of order")
			}
		}
	})
}

// The memory's size for 100,000 incidents of 5 alerts each (the stand-in's mix): bytes on
// disk and in memory, and the cost of a look-up. Run with -bench Sent -benchmem.
func BenchmarkSent100kIncidents(b *testing.B) {
	const alerts = 500_000
	path := filepath.Join(b.TempDir(), "x.incidents.sent")
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, _ := OpenSent(path, sentHorizonForTest, 0, func() time.Time { return at.Add(24 * time.Hour) })
	// Recorded as the incidents feed does: each confirmed batch's alerts in one journal
	// frame (100 here; HEC batches hold up to 10,000 events).
	start := time.Now()
	var batch []Version
	for i := range alerts {
		batch = append(batch, Version{fmt.Sprintf("da%018d_%d", 637000000000000000+i, i), at.Add(time.Duration(i) * time.Second)})
		if len(batch) == 100 || i == alerts-1 {
			if err := m.Confirm(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	recording := time.Since(start)
	jfi, _ := os.Stat(journalPath(path))
	if err := m.Save(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	fi, _ := os.Stat(path)
	b.ResetTimer()
	for i := range b.N {
		if !m.Has(fmt.Sprintf("da%018d_%d", 637000000000000000+i%alerts, i%alerts), at.Add(time.Duration(i%alerts)*time.Second)) {
			b.Fatal("a recorded version is not found")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-on-disk")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-heap")
	b.ReportMetric(float64(recording.Nanoseconds())/alerts, "ns-to-record/alert")
	b.ReportMetric(float64(jfi.Size())/alerts, "journal-bytes/alert")
	runtime.KeepAlive(m)
}

// sentHorizonForTest keeps every version of the benchmark (all within a month).
const sentHorizonForTest = 180 * 24 * time.Hour
