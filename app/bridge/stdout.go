package bridge

import (
	"context"

	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/modinput"
)

// StdoutSink writes events to splunkd as the modular input's XML stream. Records count as
// confirmed once they are written and flushed to splunkd; a write that blocks (splunkd busy)
// holds the reader back.
type StdoutSink struct {
	w       *modinput.EventWriter
	meta    modinput.Event // stanza, source, sourcetype, index, host
	confirm func(n int, lastTag any, err error)
	every   int

	pending int
	last    any
}

// NewStdoutSink writes to w; confirm is the pump's Confirmed. It flushes every `every` records
// (and on Flush).
func NewStdoutSink(w *modinput.EventWriter, meta modinput.Event, every int, confirm func(int, any, error)) *StdoutSink {
	if every <= 0 {
		every = 200
	}
	return &StdoutSink{w: w, meta: meta, confirm: confirm, every: every}
}

// Add writes one event.
func (s *StdoutSink) Add(ctx context.Context, r hec.Record, tag any) error {
	ev := s.meta
	ev.Time, ev.Data = r.Time, r.Event
	if err := s.w.Write(ev); err != nil {
		s.confirm(0, tag, err)
		return err
	}
	s.pending++
	s.last = tag
	if s.pending >= s.every {
		return s.Flush(ctx)
	}
	return nil
}

// Flush hands the written events to splunkd and confirms them.
func (s *StdoutSink) Flush(context.Context) error {
	if s.pending == 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		s.confirm(0, s.last, err)
		return err
	}
	s.confirm(s.pending, s.last, nil)
	s.pending = 0
	return nil
}
