package storage

import (
	"context"
	"time"
)

// ClusterStore is what several leapd instances over one store share
// beyond the data itself: login handshakes (a login may start on one
// instance and finish on another), wake-ups (a push through one
// instance wakes the devices connected to another) and the outbound
// queue's claims (one instance at a time sends an item).
//
// The embedded Bolt store serves one process, so its implementation is
// in memory where nothing needs to outlive the process.
type ClusterStore interface {
	// PutHandshake keeps the state of a login or recovery handshake
	// under id until expires. TakeHandshake returns it and removes it,
	// so a handshake is finished at most once; an unknown, taken or
	// expired id is ErrNotFound.
	PutHandshake(ctx context.Context, id string, state []byte, expires time.Time) error
	TakeHandshake(ctx context.Context, id string, now time.Time) ([]byte, error)

	// Wake tells every instance (this one too) that login's changes
	// feed or incoming queue moved. Wakeups calls fn for each wake of
	// any instance until ctx ends, then returns ctx's error; wakes may
	// be coalesced, never lost while Wakeups runs.
	Wake(ctx context.Context, login string) error
	Wakeups(ctx context.Context, fn func(login string)) error

	// ClaimDueOutbound returns up to limit items whose NextAttempt is
	// not after now, the earliest first, without their messages, and
	// moves their NextAttempt to now+lease in the same transaction, so
	// no other instance takes them meanwhile. An instance that dies
	// holding a claim leaves the item due again when the lease ends.
	ClaimDueOutbound(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*OutboundItem, error)
}
