// Package hec delivers events to Splunk's HTTP Event Collector and proves they were indexed.
//
// It owns the HEC protocol: envelopes and batches, gzip, request channels, indexer
// acknowledgement, the reply codes and what each means for a retry, partial batches, 413
// splitting, and spreading batches over several HEC URLs. It knows nothing of Defender: a
// record is a timestamp, a JSON object and the caller's name for it.
//
// With acks, a window of batches waits for acks at once while requests go one at a time per
// channel, in the order batches were submitted; each batch HEC takes whole is told to the
// caller as a Ticket (URL, channel, ack id, cookies) before the channel takes the next
// request, so that a new process can ask HEC about it (Client.Recover) instead of sending it
// again. A channel HEC forgot is noticed (ack ids begin again) and replaced.
//
// The package does not log. It returns errors, rejected records (for the caller's dead-letter
// file) and warnings (Client.Warnings) for the caller to log.
package hec
