// Package imapd is bitmaskd's IMAP server: what Thunderbird, Apple Mail,
// mutt or Outlook talk to on 127.0.0.1:1984. It implements the Session of
// our own protocol layer, internal/imapproto, over the account's
// encrypted mail store (Mailstore, implemented by internal/mailstore);
// messages are decrypted in memory only, when a command needs their
// content.
//
// # IMAP in a few paragraphs
//
// IMAP (RFC 9051 for IMAP4rev2, RFC 3501 for IMAP4rev1) is a stateful
// protocol. A client logs in (LOGIN or AUTHENTICATE PLAIN, here with the
// account's local token), then works on mailboxes: LIST, CREATE, RENAME,
// DELETE, SUBSCRIBE, STATUS and APPEND need no selection; SELECT (or
// EXAMINE, read-only) opens one, after which FETCH, STORE, SEARCH, COPY,
// MOVE and EXPUNGE act on its messages.
//
// Messages are named two ways. A UID is permanent within the mailbox's
// UIDVALIDITY: UIDs only grow and are never reused, and a mailbox that is
// recreated gets a new UIDVALIDITY so clients drop their caches. A
// sequence number is a position, 1 to N, in the client's current view of
// the mailbox; it shifts when a message before it is expunged. Because of
// that, a server may not change a client's view behind its back: it tells
// the client with untagged responses (EXISTS for new messages, EXPUNGE n
// for a removed one, FETCH n (FLAGS ...) for changed flags), and EXPUNGE
// only when no command that names messages by sequence number (FETCH,
// STORE, SEARCH) is running (RFC 9051 §7.5.1). Between being told, the
// client's view lags the store's, and every sequence number in a command
// is read in the client's view.
//
// # How this server keeps views
//
// The selected mailbox is a hub (hub.go), shared by the sessions that
// selected it: the messages in UID order, UIDs in a sorted slice, so a
// UID is found by binary search and a sequence number is an index; and
// imapproto's MailboxTracker, which queues every change per session and
// translates sequence numbers between the hub's view and each client's
// (SessionTracker). The store's Watch feeds the hub, in the store's order,
// with every change whoever made it (this session, another, another
// device through sync). A session that changes the mailbox applies its
// own results to the hub at once, so that its client hears of them
// before the command completes; applying is idempotent, so the same
// change arriving later from Watch does nothing. Events name the session
// that caused them (WithOrigin), so a STORE .SILENT is not echoed back.
// When the selected mailbox is deleted, renamed or recreated, its
// sessions get BYE.
//
// # Speed
//
// Nothing parses a message for FLAGS, RFC822.SIZE, INTERNALDATE, UID,
// ENVELOPE or BODYSTRUCTURE: the first four are in the hub, the next two
// in the Meta that Indexer computed once when the message was stored
// (meta.go documents its format), as is the top-level header, which
// serves BODY[HEADER.FIELDS (...)] (what mail clients ask for when they
// list a mailbox) and header searches. Only other body sections, BINARY
// and SEARCH BODY/TEXT read the message (or the full-text index answers).
// imapproto's writer turns a burst of responses into few system calls (one per 32 KiB, and one with
// the tagged answer). With 100,000 messages, SELECT takes about a millisecond and UID FETCH 1:* (FLAGS)
// tens (BenchmarkFetch100k).
//
// # Security
//
// bitmaskd listens on loopback, where nobody can read the connection, so
// LOGIN is allowed without TLS (mail clients on localhost commonly do not
// use STARTTLS); STARTTLS and implicit TLS are offered when Config.TLS is
// set. The password is the account's local token, never the account
// password, and is never logged. APPEND is limited to 64 MiB
// (APPENDLIMIT), refused before the client sends the message. MIME is
// parsed forgivingly and with limits on nesting (mime.go); a damaged meta
// is recomputed from the message; fuzz targets cover both.
//
// # Extensions
//
// IMAP4rev2 and IMAP4rev1, with IDLE, MOVE, UIDPLUS, NAMESPACE, UNSELECT,
// ESEARCH, SEARCHRES, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN,
// STATUS=SIZE, BINARY, APPENDLIMIT, MULTIAPPEND, UNAUTHENTICATE, ENABLE,
// SASL-IR, LITERAL+, ID, UTF8=ACCEPT, CONDSTORE and QRESYNC. MODSEQs are
// the store's (per device, kept across restarts); \Recent is claimed per
// mailbox through the store's floor (the first session to select gets
// the new messages, and a message arriving while sessions have the
// mailbox selected goes to the earliest of them). SEARCH BODY and TEXT
// are answered from the full-text index where the store has one
// (textSearcher), the scan covering what the index does not.
package imapd
