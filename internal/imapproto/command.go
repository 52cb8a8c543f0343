package imapproto

import (
	"github.com/emersion/go-imap/v2"
)

// Command is one command read off the connection (parse.go). Name is
// upper case without the UID prefix; UID says whether it had one. Args
// holds the command's arguments: one of the *XxxArgs types below, or nil
// for commands without arguments (CAPABILITY, NOOP, CHECK, LOGOUT,
// STARTTLS, UNAUTHENTICATE, NAMESPACE, IDLE, CLOSE, UNSELECT, EXPUNGE).
type Command struct {
	Tag  string
	Name string
	UID  bool
	Args any
	// CondStore is true when the command used a CONDSTORE feature
	// (RFC 7162 §3.1: SELECT/EXAMINE (CONDSTORE) or (QRESYNC ...),
	// STATUS or LIST RETURN (STATUS (HIGHESTMODSEQ)), FETCH MODSEQ or
	// CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE): the
	// connection then enables CONDSTORE.
	CondStore bool
}

type LoginArgs struct{ Username, Password string }

// AuthenticateArgs: Initial is the SASL-IR initial response, decoded;
// HasInitial distinguishes "=" (empty) from none.
type AuthenticateArgs struct {
	Mechanism  string
	Initial    []byte
	HasInitial bool
}

type EnableArgs struct{ Caps []imap.Cap }

// IDArgs: Params nil for ID NIL. Values nil for NIL.
type IDArgs struct {
	Params []IDParam
}

type IDParam struct {
	Key   string
	Value *string
}

// SelectArgs is SELECT and EXAMINE (Options.ReadOnly).
type SelectArgs struct {
	Mailbox string
	Options SelectOptions
}

type CreateArgs struct {
	Mailbox string
	Options imap.CreateOptions
}

// MailboxArgs is DELETE, SUBSCRIBE, UNSUBSCRIBE.
type MailboxArgs struct{ Mailbox string }

type RenameArgs struct{ Mailbox, NewName string }

// ListArgs is LIST and LSUB (Name says which).
type ListArgs struct {
	Ref      string
	Patterns []string
	Options  imap.ListOptions
}

type StatusArgs struct {
	Mailbox string
	Options imap.StatusOptions
}

// AppendArgs is APPEND, with one message or several (MULTIAPPEND).
// TooBig is set when a message's literal was over the limit: the parser
// then consumed (non-synchronizing literal) or did not ask for (synchronizing)
// its bytes, Messages is incomplete, and the answer is NO [TOOBIG].
type AppendArgs struct {
	Mailbox  string
	Messages []AppendMessage
	TooBig   bool
}

// ExpungeArgs is UID EXPUNGE.
type ExpungeArgs struct{ UIDs imap.UIDSet }

// SearchArgs: Return is true when a RETURN (...) was given (ESEARCH
// answer), even empty.
type SearchArgs struct {
	Charset  string
	Criteria imap.SearchCriteria
	Options  imap.SearchOptions
	Return   bool
}

type FetchArgs struct {
	NumSet  imap.NumSet
	Options FetchOptions
}

type StoreArgs struct {
	NumSet  imap.NumSet
	Flags   imap.StoreFlags
	Options imap.StoreOptions
	// HasUnchangedSince says UNCHANGEDSINCE was given: it may be 0
	// (RFC 7162 §3.1.3: every message then fails the test).
	HasUnchangedSince bool
}

// CopyArgs is COPY and MOVE.
type CopyArgs struct {
	NumSet imap.NumSet
	Dest   string
}
