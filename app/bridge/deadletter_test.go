package bridge

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
)

// A link planted where the dead-letter file goes must not lead the pump to append rejected
// alerts to the file it points at.
func TestDeadLetterRefusesPlantedLink(t *testing.T) {
	r := newRig(t, false, 50)
	badID := defendertest.AlertID(7)
	r.hec.Reject(func(ev []byte) bool { return strings.Contains(string(ev), badID) })
	victim := filepath.Join(t.TempDir(), "victim.conf")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dl := DeadLetterPath(r.dir, "tenant1")
	if err := os.Symlink(victim, dl); err != nil {
		if runtime.GOOS == "windows" {
			t.Skip("creating a symlink needs a privilege here:", err)
		}
		t.Fatal(err)
	}
	// One batch in flight: the batch after the bad alert's goes after its refusal, and so
	// shows it a rare bad one (with several, it may go before and prove nothing).
	_, err := r.drain(context.Background(), func(c *hec.Config) { c.MaxInFlight = 1 })
	if err == nil || !strings.Contains(err.Error(), dl) || !strings.Contains(err.Error(), "link") {
		t.Errorf("drain: %v, want an error naming the linked dead-letter file", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
}
