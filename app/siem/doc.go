// Package siem turns Defender for Endpoint alerts (the JSON objects the Alert API sends with
// $expand=evidence) into the flat "detections" of Microsoft's retired SIEM API, and encodes
// detections as CEF (ArcSight's format, by Microsoft's documented ArcSight mapping) and LEEF 2.0
// (QRadar's). It owns those shapes and nothing else: no transport, no Splunk, no pump. Every
// function is pure; an encoder appends one line (without a line break) to a caller's buffer.
//
// Where a format cannot carry a value as it is, the value is changed in one documented way:
//   - a value over a key's length limit is cut to the limit, in Unicode code points, its last
//     kept character replaced by "…" (U+2026), so a reader can tell it was cut (see cut);
//   - a line over a size limit (AppendFit: a UDP datagram's) has its free text shortened,
//     longest field first (AlertTitle, Description, CommandLine, FilePath, FileName, Url; never
//     an id, a time, the severity, a hash or a link): each shortened value is a prefix of the
//     value, cut between characters and before escaping, ending with the same "…";
//   - invalid UTF-8 becomes U+FFFD (both formats are UTF-8);
//   - CEF header fields cannot hold line breaks: CR and LF there become spaces; in the
//     extension they are written \r and \n;
//   - CEF loses the trailing spaces of the extension's last value, so the encoder ends the
//     extension with rt (digits only) and trims the last value when rt is absent;
//   - LEEF has no escape: see LEEF for the replacements.
package siem
