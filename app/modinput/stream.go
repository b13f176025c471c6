package modinput

import "time"

// Stream writes one input's events to splunkd and tells its caller what became of them.
// Events count as delivered once flushed to splunkd: every `every` events, and on Flush. A
// write that blocks (splunkd busy) holds the caller back.
type Stream struct {
	w     *EventWriter
	meta  Event // stanza, source, sourcetype, index, host
	every int
	done  func(n int, last any, err error)

	pending int
	last    any
}

// NewStream writes to w, each event with meta's stanza, source, sourcetype, index and host;
// every <= 0 means 200. done hears, in order, either n events delivered, up to the one
// tagged last, or err: the write or flush of the event tagged last failed, and nothing since
// the last report is delivered.
func NewStream(w *EventWriter, meta Event, every int, done func(n int, last any, err error)) *Stream {
	if every <= 0 {
		every = 200
	}
	return &Stream{w: w, meta: meta, every: every, done: done}
}

// Write writes one event, tagged.
func (s *Stream) Write(t time.Time, data []byte, tag any) error {
	return s.WriteAs(t, "", data, tag)
}

// WriteAs writes one event, tagged, with its own sourcetype ("" for the stream's).
func (s *Stream) WriteAs(t time.Time, sourcetype string, data []byte, tag any) error {
	ev := s.meta
	ev.Time, ev.Data = t, data
	if sourcetype != "" {
		ev.Sourcetype = sourcetype
	}
	if err := s.w.Write(ev); err != nil {
		s.done(0, tag, err)
		return err
	}
	s.pending++
	s.last = tag
	if s.pending >= s.every {
		return s.Flush()
	}
	return nil
}

// Flush hands the events written to splunkd and reports them delivered.
func (s *Stream) Flush() error {
	if s.pending == 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		s.done(0, s.last, err)
		return err
	}
	s.done(s.pending, s.last, nil)
	s.pending = 0
	return nil
}
