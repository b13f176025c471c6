// Package hec delivers events to Splunk's HTTP Event Collector and proves they were indexed.
//
// It owns the HEC protocol: envelopes and batches, gzip, request channels, indexer
// acknowledgement, the reply codes and what each means for a retry, partial batches, 413
// splitting, and spreading batches over several HEC URLs. It knows nothing of Defender: a
// record is a timestamp, a JSON object and the caller's name for it.
//
// The package does not log. It returns errors, rejected records (for the caller's dead-letter
// file) and warnings (Client.Warnings) for the caller to log.
package hec
