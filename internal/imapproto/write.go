package imapproto

// OWNED BY the write helper: everything in write*.go. The exported
// writer methods are the contract with the session (internal/imapd); the
// unexported Encoder methods listed here are the contract with conn.go.
// Keep the signatures.

import (
	"bufio"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Encoder writes responses into the connection's buffered writer. It
// does not flush (the Conn does) and does not lock (the Conn does).
type Encoder struct {
	w    *bufio.Writer
	utf8 bool // UTF8=ACCEPT enabled: mailbox names as UTF-8, else modified UTF-7
	rev2 bool // IMAP4rev2 enabled
	err  error
}

func newEncoder(w *bufio.Writer) *Encoder { return &Encoder{w: w} }

// Status is a status response: tagged (Tag set) or untagged ("*").
// CodeArg, when not nil, writes the code's argument after "[CODE ".
type Status struct {
	Tag     string
	Type    imap.StatusResponseType
	Code    imap.ResponseCode
	CodeArg func(e *Encoder)
	Text    string
}

// Contract with conn.go (bodies by the write helper).
func (e *Encoder) writeStatus(s *Status) error                       { panic("not written") }
func (e *Encoder) writeContinuation(text string) error               { panic("not written") }
func (e *Encoder) writeCapability(caps []imap.Cap) error             { panic("not written") }
func (e *Encoder) writeEnabled(caps []imap.Cap) error                { panic("not written") }
func (e *Encoder) writeID(params map[string]string) error            { panic("not written") }
func (e *Encoder) writeNamespace(data *imap.NamespaceData) error     { panic("not written") }
func (e *Encoder) writeStatusData(data *imap.StatusData) error       { panic("not written") }
func (e *Encoder) writeSelect(data *SelectData, readOnly bool) error { panic("not written") } // untagged responses only
func (e *Encoder) writeSearch(tag string, kind NumKind, data *imap.SearchData, args *SearchArgs) error {
	panic("not written")
} // SEARCH or ESEARCH
// code arguments for tagged OKs
func codeAppendUID(data *AppendData) func(e *Encoder)  { panic("not written") }
func codeCopyUID(data *imap.CopyData) func(e *Encoder) { panic("not written") }
func codeNumSet(set imap.NumSet) func(e *Encoder)      { panic("not written") } // MODIFIED

// UpdateWriter writes the untagged responses that tell a client of
// changes to its selected mailbox. ExpungeWriter and MoveWriter are the
// same writer.
type UpdateWriter struct{ c *Conn }

type (
	ExpungeWriter = UpdateWriter
	MoveWriter    = UpdateWriter
)

func (w *UpdateWriter) WriteExpunge(seq uint32) error { panic("not written") }

// WriteVanished writes VANISHED [(EARLIER)] uids (RFC 7162 §3.2.10).
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet, earlier bool) error { panic("not written") }
func (w *UpdateWriter) WriteNumMessages(n uint32) error                    { panic("not written") }
func (w *UpdateWriter) WriteNumRecent(n uint32) error                      { panic("not written") }

// WriteMailboxFlags writes * FLAGS (flags) and, when permanent is not
// nil, * OK [PERMANENTFLAGS (permanent)].
func (w *UpdateWriter) WriteMailboxFlags(flags, permanent []imap.Flag) error { panic("not written") }

// WriteMessageFlags writes * seq FETCH (UID uid FLAGS (...) MODSEQ (m));
// UID is left out when uid is 0, MODSEQ when modSeq is 0.
func (w *UpdateWriter) WriteMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	panic("not written")
}

// WriteCopyData writes * OK [COPYUID ...] (MOVE, RFC 6851).
func (w *UpdateWriter) WriteCopyData(data *imap.CopyData) error { panic("not written") }

// FetchWriter writes a FETCH's (or STORE's) responses.
type FetchWriter struct {
	c    *Conn
	opts *FetchOptions // nil for STORE
}

// Updates is for the untagged responses a FETCH or STORE sends besides
// its FETCHes (VANISHED (EARLIER), FLAGS before a new keyword).
func (w *FetchWriter) Updates() *UpdateWriter { return &UpdateWriter{c: w.c} }

// CreateMessage begins * seq FETCH (...). Until its Close, nothing else
// is written on the connection.
func (w *FetchWriter) CreateMessage(seq uint32) *FetchResponseWriter { panic("not written") }

// FetchResponseWriter writes the items of one FETCH response.
type FetchResponseWriter struct {
	w *FetchWriter
	e *Encoder
	n int // items written
}

func (w *FetchResponseWriter) WriteUID(uid imap.UID)                    { panic("not written") }
func (w *FetchResponseWriter) WriteFlags(flags []imap.Flag)             { panic("not written") }
func (w *FetchResponseWriter) WriteRFC822Size(size int64)               { panic("not written") }
func (w *FetchResponseWriter) WriteInternalDate(t time.Time)            { panic("not written") }
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64)                { panic("not written") }
func (w *FetchResponseWriter) WriteEnvelope(env *imap.Envelope)         { panic("not written") }
func (w *FetchResponseWriter) WriteBodyStructure(bs imap.BodyStructure) { panic("not written") } // BODY and/or BODYSTRUCTURE, as asked

// WriteBodySection writes BODY[section]<origin> (or RFC822, RFC822.HEADER,
// RFC822.TEXT for the obsolete items) followed by a literal of size bytes
// that the caller writes and closes.
func (w *FetchResponseWriter) WriteBodySection(section *imap.FetchItemBodySection, size int64) io.WriteCloser {
	panic("not written")
}

// WriteBinarySection writes BINARY[part]<origin> and a literal8 when the
// content has NUL bytes (the caller says so with binary).
func (w *FetchResponseWriter) WriteBinarySection(section *imap.FetchItemBinarySection, size int64) io.WriteCloser {
	panic("not written")
}
func (w *FetchResponseWriter) WriteBinarySectionSize(section *imap.FetchItemBinarySectionSize, size uint32) {
	panic("not written")
}

// Close ends the response ")" and releases the connection.
func (w *FetchResponseWriter) Close() error { panic("not written") }

// ListWriter writes LIST (or LSUB) responses, and with RETURN (STATUS)
// each listed mailbox's STATUS after it.
type ListWriter struct {
	c    *Conn
	lsub bool
	opts *imap.ListOptions
}

func (w *ListWriter) WriteList(data *imap.ListData) error { panic("not written") }
