package bridge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/statedir"
)

// deadLetter appends refused records to the dead-letter file, one JSON line each, and syncs
// it before their batch may be committed. A line holds HEC's code and text for a record
// Splunk refused, or the output and its reason for one another sink could not send.
func (p *Pump) deadLetter(rs []Rejected) error {
	path := p.cfg.DeadLetter
	f, err := statedir.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dead-letter file %s cannot be opened: %w", path, err)
	}
	for _, r := range rs {
		var line []byte
		if r.By != "" {
			line, _ = json.Marshal(struct {
				Time     time.Time       `json:"time"`
				ID       string          `json:"alert_id"`
				Output   string          `json:"output"`
				Reason   string          `json:"reason"`
				Envelope json.RawMessage `json:"envelope"`
			}{time.Now().UTC(), r.ID, r.By, r.Text, r.Envelope})
		} else {
			line, _ = json.Marshal(struct {
				Time     time.Time       `json:"time"`
				ID       string          `json:"alert_id"`
				Code     int             `json:"hec_code"`
				Text     string          `json:"hec_text"`
				Envelope json.RawMessage `json:"envelope"`
			}{time.Now().UTC(), r.ID, r.Code, r.Text, r.Envelope})
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			f.Close()
			return fmt.Errorf("dead-letter file %s cannot be written: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dead-letter file %s cannot be written: %w", path, err)
	}
	return f.Close()
}

// DeadLetterPath is the dead-letter file beside an input's checkpoint.
func DeadLetterPath(stateDir, input string) string {
	name := checkpoint.FileName(input)
	return filepath.Join(stateDir, name[:len(name)-len(".json")]+".deadletter.jsonl")
}
