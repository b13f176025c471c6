package wiring

import (
	"context"
	"log/slog"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/siem"
)

// detectionSource turns each alert version into the old SIEM API's detections (shape
// detection): one event per evidence item, with that API's field names, for content written
// for that feed. The detections of one alert version are sent together, as that version: all
// but the last are marked Nested and carry the Position from before the alert, so a
// checkpoint that lands among them makes a resume read the alert again; the last carries the
// alert's own Position and key. An alert that cannot be made into detections (no id or no
// time) is sent as it came, under the same sourcetype, with a warning: nothing is left out.
type detectionSource struct {
	src bridge.Source
	log *slog.Logger
}

func (s detectionSource) Read(ctx context.Context, w bridge.Window, emit func(bridge.Record, bridge.Position) error) (bridge.SourceStats, error) {
	var before bridge.Position
	if w.Resume != nil {
		before = w.Resume
	}
	var buf []byte
	var ends []int
	return s.src.Read(ctx, w, func(r bridge.Record, pos bridge.Position) error {
		// Every detection is made before the first is sent: an alert goes whole as
		// detections or whole as it came, never part of each.
		ds, err := siem.Build(r.Data)
		buf, ends = buf[:0], ends[:0]
		for i := 0; err == nil && i < len(ds); i++ {
			buf, err = ds[i].AppendJSON(buf)
			ends = append(ends, len(buf))
		}
		if err != nil {
			s.log.Warn("an alert cannot be made into detections; it is sent as it came", "alert_id", r.ID, "err", err)
			before = pos
			return emit(r, pos)
		}
		from := 0
		for i, end := range ends {
			rec, p := bridge.Record{ID: r.ID, Time: r.Time, Data: buf[from:end:end]}, pos
			if i < len(ends)-1 {
				rec.Nested, p = true, before
			}
			if err := emit(rec, p); err != nil {
				return err
			}
			from = end
		}
		before = pos
		return nil
	})
}
