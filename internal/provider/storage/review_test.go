package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// TestNoOutboundAfterDeletion: a submission session that authenticated
// before its account was deleted cannot queue mail after; before, its
// message went into the queue (and out) from a deleted account.
func TestNoOutboundAfterDeletion(t *testing.T) {
	s := openTestBolt(t)
	ctx := context.Background()
	fillUser(t, s, "dana")
	if _, err := s.DeleteAccount(ctx, "dana", "dana@example.org", providerapi.CodeAccountDeleted); err != nil {
		t.Fatal(err)
	}
	err := s.PutOutbound(ctx, &OutboundItem{Login: "dana", From: "dana@example.org", Message: []byte("m"), NextAttempt: time.Now()})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("queueing for a deleted login: %v, want ErrNotFound", err)
	}
	due, err := s.ListDueOutbound(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("queue after the deletion: %d items, %v", len(due), err)
	}
}
