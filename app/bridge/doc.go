// Package bridge is the pump between a feed and a destination: read a window, hand the
// records on, wait for confirmation, and only then commit the checkpoint. It speaks its own
// vocabulary (Record, Position, Source, Sink, Outcome); the feeds and sinks know nothing of
// it, and small adapters (DefenderSource, HECSink) make them a Source or a Sink.
//
// # Windows and the checkpoint
//
// A Drain reads everything up to now as windows of versions, [From, To) by version time. A
// window starts where the watermark stands, less the overlap (versions that show up late),
// and versions confirmed by earlier windows are dropped. While a window is read, the
// checkpoint holds the window and the Position of the confirmation frontier's record; once
// every record is confirmed, the watermark moves to the window's end.
//
// # Who runs, who waits
//
// The pump's state is guarded by one mutex, with one condition variable that is broadcast
// whenever the sink reports, the saver stops, or reading ends.
//
//   - The caller of Drain reads: the Source hands each record to take, which numbers it
//     (seq, from 1 in each window, or on from the last window's when it continues that
//     window's held run) and tags it, and then to the Sink's Add, outside the lock, where it
//     may block while the sink is full. When the Source is done, the caller flushes the sink
//     and waits (await) until the sink has answered for every record, or failed, or delivery
//     has ended; then for the saver to stop; then it commits the window (finish).
//   - The sink reports each batch's Outcome from its own goroutines (or from inside Add and
//     Flush), naming the batch by the Tag of its last record. report files it with the
//     frontier, moves the frontier as far as the answers go, and stages the checkpoint.
//   - The saver writes staged checkpoints (see below).
//   - Two watchers per window end its contexts: a failure (the sink's, or a save's) stops
//     reading and delivery at once; the caller's stop ends reading at once and delivery
//     after Grace, so that batches in flight can still confirm and be committed.
//
// # Generations
//
// Each window has a generation, carried in every Tag. A window abandoned on a failure or a
// stop may still have batches in flight; record numbers start over with the next window, so
// a late Outcome of the earlier generation would move the new frontier over records it never
// saw. report drops it.
//
// # The frontier
//
// The sink answers for batches in any order; the frontier (frontier.go) takes them in record
// order, and every record up to it may be committed. Records Splunk refused are held back
// there, neither committed nor dead-lettered, until a record sent after them is indexed
// (they were rare bad ones: the dead-letter file), or the run of refusals proves systematic
// (delivery stops). A run still held when a window ends is settled by the next window, or,
// at the end of the drain, carried in the checkpoint to the next drain.
//
// The frontier stops inside a batch only before a refused end, so the pump keeps every
// record's position until the sink says the destination took the batch whole (Taken); then
// only the last record's. (A later send of it that refuses its end after all leaves the
// frontier at a record without a position: the checkpoint keeps an earlier one, and a
// resume reads again from there.)
//
// # Saves coalesce
//
// Each move of the frontier stages the state up to it and starts the saver unless it runs.
// The saver takes the newest staged state under the lock and writes it without the lock, as
// long as newer ones come: one write at a time, states staged meanwhile coalesce into the
// newest, and a slow disk never holds up the sink's reports. A window's last save waits for
// the saver to stop, so no older state can land after it. A failed save stops the window.
//
// # Recovery after a restart
//
// A destination may take a batch and confirm it only later (HEC's indexer acknowledgement):
// its Sink reports such a batch Pending, with a ticket to ask about it by. The pump notes
// these batches, and those confirmed out of order, after the frontier (journal.go), and every
// save of the checkpoint carries the unbroken run of them that starts right after the
// frontier (State.Pending): one atomic write, so the run always fits the position saved with
// it. A Pending outcome moves nothing else: not the frontier, not the counts, not a failure.
// Where refused records are held (at the frontier, at the end of an earlier window, or carried
// from an earlier drain) no run is saved, and a batch with a refused record ends the run.
//
// A new Drain first asks the sink (a Recoverer) once about every ticket in the saved run
// (recover.go). The longest run of batches confirmed then, or before the crash, is committed
// as if their outcomes had come: the window's position moves to the last of them and their
// keys join Delivered, so neither the rest of the window nor the next window's overlap sends
// them again. What follows is read and sent again. If the sink cannot be asked, or asking
// fails, the checkpoint stays as it was: the batches are sent twice, never lost.
package bridge
