// Package imapproto is bitmaskd's IMAP server protocol layer: it reads
// commands off a connection into go-imap's types, calls a Session for
// each, and writes the responses. It replaces go-imap's imapserver, which
// has no CONDSTORE, QRESYNC, ID, LITERAL+ handling of over-limit APPENDs,
// MULTIAPPEND or BINARY origins; go-imap's types (imap.FetchOptions,
// imap.SearchCriteria, ...) and its client (in tests) stay. docs/design.md
// says why.
//
// The files: command.go (what a parsed command is), parse*.go (reading
// commands: the Decoder), write*.go (writing responses: the Encoder and
// the per-command writers), conn.go (the connection loop: states,
// dispatch, IDLE, STARTTLS, AUTHENTICATE, ENABLE, literals and limits),
// tracker.go (per-session views of a selected mailbox: sequence numbers
// and pending updates), session.go (what the server above implements).
package imapproto
