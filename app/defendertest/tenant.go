package defendertest

import (
	"sync"
	"time"
)

// The tenant's data: alerts, their versions, and the updates that make new ones.

// AddAlerts creates n alerts whose first version has a lastUpdateTime from at(i).
// In IncidentsMode it creates incidents instead (AddIncidents with the default sizes).
func (s *Server) AddAlerts(n int, at func(i int) time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAlertsLocked(n, at)
}

func (s *Server) addAlertsLocked(n int, at func(i int) time.Time) []string {
	if s.opt.Mode == IncidentsMode {
		return s.addIncidentsLocked(n, at, nil)
	}
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		s.nextN++
		t := at(i).UTC().Truncate(100 * time.Nanosecond)
		a := &alert{id: AlertID(s.nextN), incident: 1000 + s.nextN, created: t, pad: s.rng.IntN(2000)}
		a.versions = []Version{{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: "New"}}
		s.alerts = append(s.alerts, a)
		s.byID[a.id] = a
		ids[i] = a.id
	}
	s.changes++
	return ids
}

var statuses = []string{"New", "InProgress", "Resolved"}

// Update gives n random alerts a new version stamped now. In IncidentsMode each updated
// incident changes one of its nested alerts half the time, and leaves them all alone otherwise.
func (s *Server) Update(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateLocked(n)
}

func (s *Server) updateLocked(n int) {
	if len(s.alerts) == 0 {
		return
	}
	now := s.opt.Now().UTC().Truncate(100 * time.Nanosecond)
	for i := 0; i < n; i++ {
		a := s.alerts[s.rng.IntN(len(s.alerts))]
		if s.opt.Mode == IncidentsMode {
			changed := -1
			if len(a.nested) > 0 && s.rng.IntN(2) == 0 {
				changed = s.rng.IntN(len(a.nested))
			}
			s.updateIncidentLocked(a, now, changed)
			continue
		}
		last := a.versions[len(a.versions)-1]
		t := now
		if !t.After(last.LastUpdate) {
			t = last.LastUpdate.Add(100 * time.Nanosecond)
		}
		a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: statuses[s.rng.IntN(len(statuses))]})
		s.stats.Updates++
	}
	s.changes++
}

// UpdateAt gives each of ids a new version stamped t (a bulk action: many alerts share t). In
// IncidentsMode the incidents' nested alerts stay as they were.
func (s *Server) UpdateAt(ids []string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t = t.UTC().Truncate(100 * time.Nanosecond)
	for _, id := range ids {
		if a := s.byID[id]; a != nil {
			status := "Resolved"
			if s.opt.Mode == IncidentsMode {
				status = incidentStatuses[s.rng.IntN(len(incidentStatuses))]
			}
			a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: status})
			s.stats.Updates++
		}
	}
	s.changes++
}

// Revisit gives every k-th alert (by age) a new version stamped at a time spread between its
// creation and until, as analysts' later updates do: creation order (and id order) then
// differ from lastUpdateTime order, as in a real tenant.
func (s *Server) Revisit(k int, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until = until.UTC().Truncate(100 * time.Nanosecond)
	for i := 0; i < len(s.alerts); i += k {
		a := s.alerts[i]
		last := a.versions[len(a.versions)-1].LastUpdate
		if !until.After(last) {
			continue
		}
		frac := float64((i*7919)%1000) / 1000
		t := last.Add(time.Duration(frac * float64(until.Sub(last)))).Truncate(100 * time.Nanosecond)
		if !t.After(last) {
			t = last.Add(100 * time.Nanosecond)
		}
		a.versions = append(a.versions, Version{LastUpdate: t, VisibleAt: t.Add(s.delayLocked()), Status: "Resolved"})
		s.stats.Updates++
	}
	s.changes++
}

// StartUpdates updates perSecond random alerts a second (real time) until the returned stop.
func (s *Server) StartUpdates(perSecond int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second / time.Duration(perSecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.Update(1)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (s *Server) delayLocked() time.Duration {
	if s.delay == nil {
		return 0
	}
	return s.delay(s.rng)
}

// Versions returns an alert's versions, oldest first.
func (s *Server) Versions(id string) []Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byID[id]; a != nil {
		return append([]Version(nil), a.versions...)
	}
	return nil
}

// IDs returns every alert id.
func (s *Server) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.alerts))
	for i, a := range s.alerts {
		ids[i] = a.id
	}
	return ids
}

// Current returns each alert's newest version visible at t.
func (s *Server) Current(t time.Time) map[string]Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]Version, len(s.alerts))
	for _, a := range s.alerts {
		if v, ok := a.visible(t); ok {
			m[a.id] = v
		}
	}
	return m
}
