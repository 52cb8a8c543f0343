package imapproto

import (
	"crypto/tls"
	"io"
	"log/slog"
	"time"

	"github.com/emersion/go-imap/v2"
)

// NumKind says whether the numbers of a command are sequence numbers or
// UIDs (the UID prefix).
type NumKind int

const (
	NumKindSeq NumKind = iota
	NumKindUID
)

// Session is one client connection's state above the protocol: the
// server (internal/imapd) implements it. The connection calls its methods
// one command at a time (Idle runs alongside only the read of DONE). An
// error that is an *imap.Error is answered as it is (NO or BAD with its
// code and text); any other error is answered NO [SERVERBUG] with a
// generic text and logged.
type Session interface {
	// Close is called once when the connection ends, in any state.
	Close() error

	// Not authenticated state.
	Login(username, password string) error

	// Authenticated state.
	Unauthenticate() error
	Namespace() (*imap.NamespaceData, error)
	Select(mailbox string, options *SelectOptions) (*SelectData, error)
	Create(mailbox string, options *imap.CreateOptions) error
	Delete(mailbox string) error
	Rename(mailbox, newName string) error
	Subscribe(mailbox string) error
	Unsubscribe(mailbox string) error
	// List answers LIST (and LSUB, with options.SelectSubscribed set and
	// lsub true: the writer then writes LSUB responses).
	List(w *ListWriter, ref string, patterns []string, options *imap.ListOptions, lsub bool) error
	Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error)
	// Append stores one message (APPEND) or several at once (MULTIAPPEND,
	// RFC 3502: all or none). Literals are read whole before the call,
	// each within AppendLimit.
	Append(mailbox string, msgs []AppendMessage) (*AppendData, error)
	// Poll writes the updates pending for the selected mailbox (after
	// every command; allowExpunge is false after FETCH, STORE and SEARCH
	// by sequence number, RFC 9051 §7.5.1).
	Poll(w *UpdateWriter, allowExpunge bool) error
	// Idle writes updates as they come until stop is closed.
	Idle(w *UpdateWriter, stop <-chan struct{}) error

	// Selected state.
	Unselect() error
	// Expunge removes the \Deleted messages (uids nil) or those of them
	// in uids (UID EXPUNGE). close is true for CLOSE, which sends no
	// untagged EXPUNGE.
	Expunge(w *ExpungeWriter, uids *imap.UIDSet, close bool) error
	Search(kind NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error)
	Fetch(w *FetchWriter, kind NumKind, numSet imap.NumSet, options *FetchOptions) error
	// Store changes flags and writes the FETCH responses (none when
	// flags.Silent, except for CONDSTORE's MODSEQ rule). With
	// options.UnchangedSince, the messages it did not change because
	// they changed since are returned (kind's numbers) for OK
	// [MODIFIED set].
	Store(w *FetchWriter, kind NumKind, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) (modified imap.NumSet, err error)
	Copy(kind NumKind, numSet imap.NumSet, dest string) (*imap.CopyData, error)
	Move(w *MoveWriter, kind NumKind, numSet imap.NumSet, dest string) error
}

// SelectOptions are the parameters of SELECT and EXAMINE.
type SelectOptions struct {
	ReadOnly  bool           // EXAMINE
	CondStore bool           // (CONDSTORE), RFC 7162 §3.1.8
	QResync   *QResyncParams // (QRESYNC (...)), RFC 7162 §3.2.5
}

// QResyncParams are what a QRESYNC client knows of the mailbox.
type QResyncParams struct {
	UIDValidity uint32
	ModSeq      uint64
	KnownUIDs   imap.UIDSet // nil when not given
	// SeqMatch, when given, pairs known sequence numbers with their UIDs
	// (the third parameter); both have the same number of members.
	SeqMatchSeqs imap.SeqSet
	SeqMatchUIDs imap.UIDSet
}

// SelectData is what SELECT and EXAMINE answer.
type SelectData struct {
	Flags          []imap.Flag
	PermanentFlags []imap.Flag // nil for EXAMINE: answered as ()
	NumMessages    uint32
	NumRecent      uint32 // * n RECENT (IMAP4rev1 sessions only)
	FirstUnseen    uint32 // OK [UNSEEN n], IMAP4rev1 only; 0: none
	UIDNext        imap.UID
	UIDValidity    uint32
	// HighestModSeq is sent as OK [HIGHESTMODSEQ n]; 0 means the mailbox
	// has no mod-sequences (OK [NOMODSEQ]).
	HighestModSeq uint64
	// After, when set, is called after the untagged responses above and
	// before the tagged OK: QRESYNC's VANISHED (EARLIER) and FETCHes.
	After func(w *UpdateWriter) error
}

// FetchOptions are FETCH's items and modifiers.
type FetchOptions struct {
	imap.FetchOptions
	// Vanished is the VANISHED modifier (UID FETCH with CHANGEDSINCE,
	// QRESYNC enabled): the session writes VANISHED (EARLIER) first.
	Vanished bool
	// The obsolete RFC822 items are answered under their own names
	// (RFC 3501 §6.4.5). Each, when asked for, is also one of the
	// sections in BodySection (pointer identity): RFC822 = BODY[],
	// RFC822Header = BODY.PEEK[HEADER], RFC822Text = BODY[TEXT].
	RFC822, RFC822Header, RFC822Text *imap.FetchItemBodySection
}

// AppendMessage is one message of APPEND.
type AppendMessage struct {
	Flags   []imap.Flag
	Time    time.Time // zero: now
	Literal []byte
	UTF8    bool // sent as UTF8 (~{n}) (RFC 6855)
}

// AppendData is what APPEND answers in OK [APPENDUID validity uids].
type AppendData struct {
	UIDValidity uint32
	UIDs        imap.UIDSet
}

// Options configure a Server.
type Options struct {
	// NewSession makes the session of a new connection. An *imap.Error
	// with type BYE refuses the connection with that text.
	NewSession func(c *Conn) (Session, error)
	// Caps are the capabilities the server has beyond those the
	// protocol layer provides itself (see conn.go).
	Caps imap.CapSet
	// AppendLimit is the largest message APPEND takes (APPENDLIMIT).
	AppendLimit uint32
	// ID is the server's answer to ID (RFC 2971): name, version, ...
	ID map[string]string
	// TLSConfig enables STARTTLS; nil: not offered.
	TLSConfig *tls.Config
	// InsecureAuth allows LOGIN and AUTHENTICATE without TLS.
	InsecureAuth bool
	// Logger gets the layer's log lines (never passwords or content).
	Logger *slog.Logger
	// DebugWriter, when set, gets a copy of every byte exchanged.
	DebugWriter io.Writer
	// MaxPreAuth is how many connections may wait to log in at once
	// (default DefaultMaxPreAuth); one more closes the one that has
	// waited longest. PreAuthTimeout is how long after connecting a
	// connection must have logged in (default DefaultPreAuthTimeout):
	// a client that logged in gets the 30 minutes of silence RFC 9051
	// §5.4 asks.
	MaxPreAuth     int
	PreAuthTimeout time.Duration
}

// The defaults of Options.MaxPreAuth and Options.PreAuthTimeout: a mail
// client logs in within a second of connecting; what connects and does
// not (a stuck or hostile local program) is bounded in number and time.
const (
	DefaultMaxPreAuth     = 64
	DefaultPreAuthTimeout = 2 * time.Minute
)
