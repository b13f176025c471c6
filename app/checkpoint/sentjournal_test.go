package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// What a process records must outlive it even if it never saves (SIGKILL, splunkd stopping
// it): the checkpoint, saved more often, is already past those alerts' incidents.
func TestSentJournalOutlivesACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.incidents.sent")
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	v := func(id string, s int) Version { return Version{id, at.Add(time.Duration(s) * time.Second)} }
	m, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Confirm([]Version{v("da1", 1), v("da2", 2)}); err != nil {
		t.Fatal(err)
	}
	m.Taken(`{"ack_id":1}`, []Version{v("da3", 3), v("da4", 4)}) // confirmed later, by a restart's question
	m.Taken(`{"ack_id":2}`, []Version{v("da5", 5)})              // never confirmed

	// The crash: no Save, no Close. A second process opens the same files.
	back, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    Version
		want bool
	}{{v("da1", 1), true}, {v("da2", 2), true}, {v("da3", 3), false}, {v("da5", 5), false}} {
		if got := back.Has(c.v.ID, c.v.T); got != c.want {
			t.Errorf("after the crash, Has(%s) = %v, want %v", c.v.ID, got, c.want)
		}
	}
	if n, err := back.Prove(`{"ack_id":1}`); n != 2 || err != nil {
		t.Fatalf("Prove of the first ticket recorded %d (%v), want 2", n, err)
	}
	back.ForgetEarlier()
	if n, _ := back.Prove(`{"ack_id":2}`); n != 0 {
		t.Errorf("Prove after ForgetEarlier recorded %d, want 0", n)
	}
	if !back.Has("da3", at.Add(3*time.Second)) || !back.Has("da4", at.Add(4*time.Second)) || back.Has("da5", at.Add(5*time.Second)) {
		t.Fatal("only the proved ticket's versions may count as sent")
	}

	// A second crash, after the proof: it holds; then a Save starts the journal over.
	third, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Has("da4", at.Add(4*time.Second)) || !third.Has("da1", at.Add(time.Second)) {
		t.Fatal("a proof was lost in a second crash")
	}
	third.ForgetEarlier()                               // as after a restart's question: the earlier tickets go
	third.Taken(`{"ack_id":9}`, []Version{v("da9", 9)}) // still taken at the Save: carried over
	third.Taken(`{"ack_id":8}`, []Version{v("da8", 8)})
	third.Settled(`{"ack_id":8}`) // its outcome came: not carried
	if err := third.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(journalPath(path)); err != nil {
		t.Fatal(err)
	} else if want := int64(len(journalMagic) + frameHead + sentBytes + 4); fi.Size() != want {
		t.Errorf("journal of %d bytes after Save, want %d (the header and the one ticket still taken)", fi.Size(), want)
	}
	third.Close()
	fourth, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fourth.Len() != 4 {
		t.Errorf("%d items after Save and reopen, want 4", fourth.Len())
	}
	if n, _ := fourth.Prove(`{"ack_id":9}`); n != 1 {
		t.Errorf("a ticket taken at the Save was not carried into the new journal (%d proved)", n)
	}
}

// A frame cut short by a crash ends the replay; the journal is cut back so that what comes
// after it is replayed next time.
func TestSentJournalCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sent")
	at := time.Unix(1_800_000_000, 0)
	m, _ := OpenSent(path, 0, 0, nil)
	m.Record("da1", at)
	m.Record("da2", at)
	b, _ := os.ReadFile(journalPath(path))
	os.WriteFile(journalPath(path), b[:len(b)-3], 0o600)
	back, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Has("da1", at) || back.Has("da2", at) {
		t.Fatal("the whole frame must be replayed and the cut one left out")
	}
	back.Record("da3", at)
	again, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Has("da3", at) {
		t.Fatal("a version recorded after a cut frame was lost: the journal was not cut back")
	}
	os.WriteFile(journalPath(path), []byte("something else\n"), 0o600)
	if _, err := OpenSent(path, 0, 0, nil); err == nil {
		t.Fatal("a journal that is not one must be an error naming it")
	}
}

// A journal whose start a power cut left cut short or as zeros held nothing that can be read:
// it is started over (the caller warns), not an input that cannot start until someone deletes
// it. Another file in its place stays an error.
func TestSentJournalDamagedStart(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	for name, start := range map[string][]byte{
		"cut":        []byte(journalMagic[:7]),
		"zeros":      make([]byte, 4096),
		"zero bytes": make([]byte, 3),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.sent")
			if err := os.WriteFile(journalPath(path), start, 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := OpenSent(path, 0, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Restarted != journalPath(path) {
				t.Errorf("Restarted = %q, want the journal's path", m.Restarted)
			}
			if err := m.Record("da1", at); err != nil {
				t.Fatal(err)
			}
			back, err := OpenSent(path, 0, 0, nil)
			if err != nil || !back.Has("da1", at) || back.Restarted != "" {
				t.Fatalf("after the start over: %v, has %v, restarted %q", err, err == nil && back.Has("da1", at), back.Restarted)
			}
		})
	}
}

// A Save after Close (a late background save) writes nothing: the files may be another
// process's by then.
func TestSentSaveAfterCloseWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sent")
	m, err := OpenSent(path, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Record("da1", time.Unix(1_800_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Save after Close wrote the memory's file (%v)", err)
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(appendFrame(nil, 'C', 0, []sentEntry{{1, 2}}))
	f.Add(appendFrame(nil, 'T', 7, []sentEntry{{1, 2}, {3, 4}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &Sent{delta: map[uint64]int64{}, earlier: map[uint64][]sentEntry{}}
		if n := m.replay(b); n < 0 || n > int64(len(b)) {
			t.Fatalf("replayed %d of %d bytes", n, len(b))
		}
	})
}

// Whatever a journal file holds, opening it fails with an error or replays what it can, and
// what it recorded after opening is read back by the next open.
func FuzzOpenJournal(f *testing.F) {
	f.Add([]byte(journalMagic))
	f.Add(append([]byte(journalMagic), appendFrame(nil, 'C', 0, []sentEntry{{1, 2}})...))
	f.Add([]byte(journalMagic[:5]))
	f.Add(make([]byte, 40))
	at := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "x.sent")
		if err := os.WriteFile(journalPath(path), b, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := OpenSent(path, 0, 0, nil)
		if err != nil {
			return
		}
		if err := m.Record("da-fuzz", at); err != nil {
			t.Fatal(err)
		}
		m.Close()
		back, err := OpenSent(path, 0, 0, nil)
		if err != nil || !back.Has("da-fuzz", at) {
			t.Fatalf("a version recorded after opening %q was lost: %v", b, err)
		}
		back.Close()
	})
}
