package imapproto

// The untagged responses that tell a client of changes to its selected
// mailbox: EXPUNGE, VANISHED, EXISTS, RECENT, FLAGS, FETCH (FLAGS) and
// MOVE's COPYUID.

import (
	"github.com/emersion/go-imap/v2"
)

// UpdateWriter writes the untagged responses that tell a client of
// changes to its selected mailbox. ExpungeWriter and MoveWriter are the
// same writer.
type UpdateWriter struct{ c *Conn }

type (
	ExpungeWriter = UpdateWriter
	MoveWriter    = UpdateWriter
)

// WriteExpunge writes * seq EXPUNGE.
func (w *UpdateWriter) WriteExpunge(seq uint32) error {
	w.c.beginResponse().writeExpunge(seq)
	return w.c.endResponse()
}

// WriteVanished writes VANISHED [(EARLIER)] uids (RFC 7162 §3.2.10).
// An empty set writes nothing.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet, earlier bool) error {
	if len(uids) == 0 {
		return nil
	}
	w.c.beginResponse().writeVanished(uids, earlier)
	return w.c.endResponse()
}

// WriteNumMessages writes * n EXISTS.
func (w *UpdateWriter) WriteNumMessages(n uint32) error {
	w.c.beginResponse().writeExists(n)
	return w.c.endResponse()
}

// WriteNumRecent writes * n RECENT, in IMAP4rev1 sessions only (RFC 9051
// has no RECENT).
func (w *UpdateWriter) WriteNumRecent(n uint32) error {
	w.c.beginResponse().writeRecent(n)
	return w.c.endResponse()
}

// WriteMailboxFlags writes * FLAGS (flags) and, when permanent is not
// nil, * OK [PERMANENTFLAGS (permanent)].
func (w *UpdateWriter) WriteMailboxFlags(flags, permanent []imap.Flag) error {
	w.c.beginResponse().writeMailboxFlags(flags, permanent)
	return w.c.endResponse()
}

// WriteMessageFlags writes * seq FETCH (UID uid FLAGS (...) MODSEQ (m));
// UID is left out when uid is 0, MODSEQ when modSeq is 0.
func (w *UpdateWriter) WriteMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	w.c.beginResponse().writeMessageFlags(seq, uid, flags, modSeq)
	return w.c.endResponse()
}

// WriteCopyData writes * OK [COPYUID ...] (MOVE, RFC 6851).
func (w *UpdateWriter) WriteCopyData(data *imap.CopyData) error {
	w.c.beginResponse().writeCopyData(data)
	return w.c.endResponse()
}

func (e *Encoder) writeExpunge(seq uint32) {
	b := append(e.avail(24), "* "...)
	b = appendUint32(b, seq)
	e.w.Write(append(b, " EXPUNGE\r\n"...))
}

func (e *Encoder) writeVanished(uids imap.UIDSet, earlier bool) {
	if earlier {
		e.raw("* VANISHED (EARLIER) ")
	} else {
		e.raw("* VANISHED ")
	}
	e.uidSet(uids)
	e.crlf()
}

func (e *Encoder) writeExists(n uint32) {
	b := append(e.avail(24), "* "...)
	b = appendUint32(b, n)
	e.w.Write(append(b, " EXISTS\r\n"...))
}

func (e *Encoder) writeRecent(n uint32) {
	if e.rev2 {
		return
	}
	b := append(e.avail(24), "* "...)
	b = appendUint32(b, n)
	e.w.Write(append(b, " RECENT\r\n"...))
}

func (e *Encoder) writeMailboxFlags(flags, permanent []imap.Flag) {
	e.raw("* FLAGS ")
	e.flags(flags)
	e.crlf()
	if permanent != nil {
		e.raw("* OK [PERMANENTFLAGS ")
		e.flags(permanent)
		e.raw("] Flags permitted\r\n")
	}
}

func (e *Encoder) writeMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) {
	e.startFetch(seq)
	if uid != 0 {
		e.raw("UID ")
		e.number(uint32(uid))
		e.sp()
	}
	e.raw("FLAGS ")
	e.flags(flags)
	if modSeq != 0 {
		e.raw(" MODSEQ (")
		e.number64(modSeq)
		e.byte(')')
	}
	e.raw(")\r\n")
}

func (e *Encoder) writeCopyData(data *imap.CopyData) {
	e.raw("* OK [COPYUID ")
	codeCopyUID(data)(e)
	e.raw("] Moved\r\n")
}
