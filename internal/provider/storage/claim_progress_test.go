package storage

import (
	"context"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
)

// claimer is what a queue worker uses of a store.
type claimer interface {
	PutOutbound(ctx context.Context, item *OutboundItem) error
	ClaimDueOutbound(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*OutboundItem, error)
	UpdateOutbound(ctx context.Context, item *OutboundItem) error
	ListDueOutbound(ctx context.Context, now time.Time, limit int) ([]*OutboundItem, error)
}

// testProgressKeepsTheClaim: a worker records, in the middle of an
// attempt, that one recipient's domain took the message (the item as
// claimed, with one recipient sent). Another worker must not claim the
// item then and send to the domains not yet recorded; once the attempt
// ends with a next attempt, the item is due again when that comes.
func testProgressKeepsTheClaim(t *testing.T, s claimer) {
	ctx := context.Background()
	now := time.Now()
	it := &OutboundItem{Login: "alice", From: "alice@example.org", Message: []byte("m"), NextAttempt: now.Add(-time.Second),
		Recipients: []OutboundRecipient{{Address: "bob@a.example"}, {Address: "carol@b.example"}}}
	if err := s.PutOutbound(ctx, it); err != nil {
		t.Fatal(err)
	}
	items, err := s.ClaimDueOutbound(ctx, now, 10, time.Hour)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %d items, %v", len(items), err)
	}
	mine := items[0]
	mine.Recipients[0].State = "sent"
	if err := s.UpdateOutbound(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if other, err := s.ClaimDueOutbound(ctx, now, 10, time.Hour); err != nil || len(other) != 0 {
		t.Fatalf("another worker claimed %d items in the middle of an attempt (%v)", len(other), err)
	}
	if due, err := s.ListDueOutbound(ctx, now, 10); err != nil || len(due) != 0 {
		t.Fatalf("%d items listed due in the middle of an attempt (%v)", len(due), err)
	}
	// The attempt ends: the other domain deferred, next attempt in a minute.
	mine.NextAttempt = now.Add(time.Minute)
	if err := s.UpdateOutbound(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if other, err := s.ClaimDueOutbound(ctx, now, 10, time.Hour); err != nil || len(other) != 0 {
		t.Fatalf("claimed before its next attempt: %d items (%v)", len(other), err)
	}
	later, err := s.ClaimDueOutbound(ctx, now.Add(2*time.Minute), 10, time.Hour)
	if err != nil || len(later) != 1 {
		t.Fatalf("at its next attempt: %d items claimed (%v)", len(later), err)
	}
	if r := later[0].Recipients; r[0].State != "sent" || r[1].State != "" {
		t.Fatalf("recipients as stored: %+v", r)
	}
}

func TestProgressKeepsTheClaimBolt(t *testing.T) {
	s := openTestBolt(t)
	pgUser(t, s, "alice")
	testProgressKeepsTheClaim(t, s)
}

func TestProgressKeepsTheClaimPostgres(t *testing.T) {
	s := openPG(t, postgres.Start(t))
	pgUser(t, s, "alice")
	testProgressKeepsTheClaim(t, s)
}
