package imapd

import (
	"context"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// Mailstore is what the IMAP server needs from one account's mail.
// *mailstore.Store implements it; the tests use an in-memory fake.
//
// The server relies on these properties of Watch:
//   - every change to a mailbox (from this device's calls and from sync)
//     is delivered to every watcher of that mailbox, in the order the
//     store made the changes, and none is dropped;
//   - a change's event is queued before the call that made it returns
//     (delivery itself may be asynchronous);
//   - events caused by a call whose context went through WithOrigin carry
//     that origin;
//   - Watch("") delivers EventMailboxes for every created, deleted,
//     renamed or (un)subscribed mailbox, naming it.
//
// UIDs are assigned in increasing order per mailbox and never reused
// under one UIDVALIDITY; a mailbox that is deleted and created again gets
// a new UIDVALIDITY. MODSEQs (Message.ModSeq, Event.ModSeq,
// MailboxInfo.HighestModSeq) grow strictly per mailbox and survive
// restarts (CONDSTORE, QRESYNC).
type Mailstore interface {
	Mailboxes() []mailstore.MailboxInfo
	Mailbox(name string) (mailstore.MailboxInfo, error)
	CreateMailbox(ctx context.Context, name string) error
	DeleteMailbox(ctx context.Context, name string) error
	RenameMailbox(ctx context.Context, oldName, newName string) error
	Subscribe(ctx context.Context, name string, on bool) error
	Messages(name string) ([]mailstore.Message, error)
	Append(ctx context.Context, mbox string, raw []byte, flags []string, date time.Time) (mailstore.Message, uint32, error)
	AppendBatch(ctx context.Context, mbox string, msgs []mailstore.NewMessage) ([]mailstore.Message, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	Meta(id string) ([]byte, error)
	StoreFlags(ctx context.Context, mbox string, uids []uint32, op mailstore.FlagOp, flags []string) ([]mailstore.Message, error)
	StoreFlagsIf(ctx context.Context, mbox string, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince uint64) (changed []mailstore.Message, failed []uint32, err error)
	ClaimRecent(ctx context.Context, mbox string) (floor uint32, err error)
	RaiseRecent(ctx context.Context, mbox string, uid uint32) (claimed bool, err error)
	Vanished(mbox string, sinceModSeq uint64) []uint32
	Copy(ctx context.Context, src string, uids []uint32, dest string) (srcUIDs, destUIDs []uint32, destUIDValidity uint32, err error)
	Move(ctx context.Context, src string, uids []uint32, dest string) (srcUIDs, destUIDs []uint32, destUIDValidity uint32, err error)
	Expunge(ctx context.Context, mbox string, uids []uint32) ([]uint32, error)
	Watch(mbox string) (<-chan mailstore.Event, func())
}

// Auth checks a mail client's credentials: username is the account
// address, password the account's local IMAP/SMTP token. It returns the
// account's mail, or an error (which the client sees only as
// AUTHENTICATIONFAILED). Sessions that get the same Mailstore value (it
// must be comparable, e.g. a pointer) share their selected mailboxes.
type Auth interface {
	Check(username, password string) (Mailstore, error)
}

// AuthFunc adapts a function to Auth.
type AuthFunc func(username, password string) (Mailstore, error)

// Check calls f.
func (f AuthFunc) Check(username, password string) (Mailstore, error) { return f(username, password) }

// originKey carries the origin for stores other than mailstore (the tests'
// fake), which cannot read mailstore's private context key.
type originKey struct{}

// withOrigin marks the changes made with ctx as made by origin (a
// session's *view), so that the session can tell its own changes from
// others' when their events come back.
func withOrigin(ctx context.Context, origin any) context.Context {
	ctx = mailstore.WithOrigin(ctx, origin)
	return context.WithValue(ctx, originKey{}, origin)
}

// OriginOf returns the origin withOrigin put in ctx, for Mailstore
// implementations other than *mailstore.Store.
func OriginOf(ctx context.Context) any { return ctx.Value(originKey{}) }
