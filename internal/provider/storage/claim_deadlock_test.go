package storage

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestClaimsBesideAGrowingFile: a queue worker claiming, another listing
// and a third queueing large messages and deleting them (which grows
// bbolt's map: the writer then waits for every reader, and holds back
// new ones) run together. The claims' lock was held across a read
// transaction and taken inside another, so the three could wait on each
// other for good (TestTwoQueuesSendOnce hung once in CI); now they must
// all finish.
func TestClaimsBesideAGrowingFile(t *testing.T) {
	s := openTestBolt(t)
	ctx := context.Background()
	fillUser(t, s, "erin")
	const rounds = 300
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for range rounds {
			if _, err := s.ClaimDueOutbound(ctx, time.Now().Add(time.Hour), 4, time.Minute); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range rounds {
			if _, err := s.ListDueOutbound(ctx, time.Now().Add(time.Hour), 100); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		big := make([]byte, 256<<10)
		for i := range rounds {
			it := &OutboundItem{Login: "erin", From: "erin@example.org", Message: big, NextAttempt: time.Now()}
			if err := s.PutOutbound(ctx, it); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				if err := s.DeleteOutbound(ctx, it.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("claiming, listing and writing the queue deadlocked")
	}
}
