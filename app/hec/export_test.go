package hec

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// CompressForTest exposes compression to benchmarks.
func CompressForTest(c *Client, b *Batch) []byte {
	z, err := c.compress(b.body)
	if err != nil {
		panic(err)
	}
	return z
}

// Kind and its values name the reply classes for the classification tests; callers outside
// the package see only Error.Retryable.
type Kind = kind

const (
	OK        = kindOK
	Retry     = kindRetry
	Partial   = kindPartial
	TooLarge  = kindTooLarge
	Fatal     = kindFatal
	Malformed = kindMalformed
)

// IsFatal is isFatal, for the tests.
func IsFatal(err error) bool { return isFatal(err) }

// ClassifyForTest runs the reply classifier on a status and body.
func ClassifyForTest(status int, body []byte) (kind, bool) {
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
	_, e := readReply(resp, "main")
	if e == nil {
		return kindOK, true
	}
	return e.kind, true
}

// SetSenderTimer replaces the sender's time.AfterFunc, so that a test decides when (and in
// which order) linger timers fire.
func SetSenderTimer(s *BatchSender, afterFunc func(time.Duration, func()) *time.Timer) {
	s.mu.Lock()
	s.afterFunc = afterFunc
	s.mu.Unlock()
}
