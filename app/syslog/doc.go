// Package syslog sends messages to a syslog receiver: RFC 5424 messages over TCP or TLS
// (RFC 5425 octet counting, or LF framing) or UDP (one message per datagram). It owns the
// message header, the framing, the connection (dial, TLS, reconnect with backoff) and what
// "delivered" can mean without acknowledgements. It knows nothing of what the messages say
// (CEF, LEEF, JSON) nor of who reads them: like modinput's Stream, it takes messages with an
// opaque tag and reports, in order, which of them are confirmed (Report).
//
// # Delivery
//
// Syslog acknowledges nothing. A message is confirmed once written and flushed to the
// connection: the kernel took it. That is not delivery: when a connection breaks (the
// receiver restarts, a firewall resets it), what the kernel still held, or the receiver had
// read but not processed, is lost, and the caller may already have moved its checkpoint past
// it. The Writer makes that safe by re-sending: it keeps every message written in the last
// Options.Resend (5 s by default) and, on any connection error, first re-sends on the new
// connection every kept message written less than Resend before the error, then goes on.
//
// The argument: a message confirmed at time t is only forgotten once the connection has
// stayed up until t+Resend. A stream connection is watched (a receiver never sends, so a read
// that ends means the connection is gone), so a break is known when it happens, not when the
// next message is written. If the receiver takes a message into its own processing within
// Resend of its write whenever the connection stays up that long, every confirmed message
// reaches it at least once. Re-sent messages may arrive twice; Report.Resent and
// Stats.Resent count them. The bound on what is kept (Options.Keep) never breaks the
// argument: when it is full, writing waits until the oldest message ages out.
//
// A connection that breaks sooner than Resend after it was made counts as a failed attempt
// (backoff, Options.OnRetry), and a new TLS 1.3 connection is watched briefly before use,
// since a server refuses a client certificate only after the client's handshake is done:
// a receiver that takes connections and drops them is not mistaken for one that takes data.
//
// What this cannot cover: a receiver that fails after reading a message but before storing
// it, with the connection staying up longer than Resend (a hung receiver); a silent network
// partition longer than Resend before the write timeout notices it; a receiver that fails in
// the Resend window after Close; and UDP, where nothing reports a loss. Where a
// destination acknowledges (HEC with indexer acknowledgement) that path is the one that
// proves delivery.
//
// # Sizes and framing
//
// Options.MaxSize (1,400 bytes for UDP, 8,192 for TCP and TLS, RFC 5425's "should") bounds a
// message, header included. A longer one is given to Options.Shorten; if that cannot make
// it fit, it is reported Rejected (ErrTooBig) with the message as it would have been sent,
// for a dead-letter file. Under LF framing a message holding a line feed is Rejected
// (ErrNewline), not altered. Nothing is ever cut by the Writer itself.
package syslog
