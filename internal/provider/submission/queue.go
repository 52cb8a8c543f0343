package submission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// Recipient states in storage.OutboundRecipient.State.
const (
	statePending = ""
	stateSent    = "sent"
	stateFailed  = "failed"
)

// Claims on the queue (docs/storage.md, "Several instances"): several
// leapd instances may work one queue, so an item is not listed but
// claimed: ClaimDueOutbound moves its next attempt to claimLease ahead
// in the same transaction, and no other instance sees it due meanwhile.
// The attempt ends with the item's new state (sent, rescheduled, or due
// at once after a shutdown); an instance that dies mid-attempt leaves it
// due again when the lease ends, and another instance sends it then (at
// least once, as after a crash of a single leapd). The SMTP part of an
// attempt is bounded by attemptBound, well inside the lease, so a slow
// remote server cannot keep an attempt past its claim.
const (
	claimLease   = 20 * time.Minute
	attemptBound = 15 * time.Minute
)

// Run works the outbound queue until ctx ends: it delivers the items
// that are due, at most Config.Concurrency at once, and returns when ctx
// ended and the deliveries under way stopped (they are interrupted;
// their items stay queued and are retried on the next start).
func (s *Submission) Run(ctx context.Context) error {
	s.log.Info("submission: outbound queue running", "retry_base", s.cfg.RetryBase, "give_up", s.cfg.GiveUp,
		"dane", s.cfg.DNSSECResolverAddr != "")
	var (
		mu       sync.Mutex
		inflight = map[string]bool{}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, s.cfg.Concurrency)
	)
	// The background work: the MTA-STS refresh (first at start) and the
	// TLS reports, whose counts are saved when Run returns, after the
	// deliveries under way ended.
	var lastRefresh time.Time
	refreshing := make(chan struct{}, 1)
	defer func() {
		refreshing <- struct{}{} // the refresh under way has ended
		s.rpt.saveCurrent()
	}()
	defer wg.Wait()
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		s.background(ctx, &lastRefresh, refreshing)
		// Claim only what can start now: a claimed item waits for
		// nobody else until its lease ends.
		var items []*storage.OutboundItem
		if free := cap(sem) - len(sem); free > 0 {
			var err error
			items, err = s.queue.ClaimDueOutbound(ctx, time.Now(), free, claimLease)
			if err != nil && ctx.Err() == nil {
				s.log.Error("submission: claiming from the outbound queue", "err", err)
			}
		}
		for _, it := range items {
			mu.Lock()
			busy := inflight[it.ID]
			mu.Unlock()
			if busy {
				continue // cannot be: its claim is ours
			}
			sem <- struct{}{} // free: only this loop takes slots
			mu.Lock()
			inflight[it.ID] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.process(ctx, it)
				mu.Lock()
				delete(inflight, it.ID)
				mu.Unlock()
				<-sem
				s.kick()
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// process makes one delivery attempt for an item: every pending
// recipient, grouped by domain, then the report of new failures to the
// sender, then either the item's removal (nothing left to do) or its
// next attempt. The item leaves the queue only after every recipient's
// server took it or refused it and the sender was told: a crash before
// that repeats the attempt (delivery is at least once).
func (s *Submission) process(ctx context.Context, it *storage.OutboundItem) {
	// Storage writes finish even when ctx ends mid-attempt: what was
	// delivered is recorded, so it is not sent again.
	sctx := context.WithoutCancel(ctx)
	msg, err := s.queue.OutboundMessage(sctx, it.ID)
	if errors.Is(err, storage.ErrNotFound) {
		// The listing this item came from is older than the delivery
		// that just finished it (items and messages are written and
		// removed together): nothing left to do.
		s.log.Debug("submission: item already done", "item", it.ID)
		_ = s.queue.DeleteOutbound(sctx, it.ID)
		return
	} else if err != nil {
		s.log.Error("submission: reading a queued message", "item", it.ID, "err", err)
		s.reschedule(sctx, it, time.Now())
		return
	}
	it.Attempts++

	byDomain := map[string][]int{}
	var domains []string
	for i, r := range it.Recipients {
		if r.State != statePending {
			continue
		}
		d := domainOf(r.Address)
		if byDomain[d] == nil {
			domains = append(domains, d)
		}
		byDomain[d] = append(byDomain[d], i)
	}
	if len(domains) > 0 {
		// Within the claim's lease; a remote too slow for it is a
		// temporary failure, tried again later.
		actx, cancel := context.WithTimeout(ctx, attemptBound)
		defer cancel()
		parts := s.outgoing(it, msg)
		var mu sync.Mutex // guards it while domains finish
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for _, d := range domains {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				idx := byDomain[d]
				rcpts := make([]string, len(idx))
				for j, i := range idx {
					rcpts[j] = it.Recipients[i].Address
				}
				res := s.deliverDomain(actx, d, envelope{itemID: it.ID, from: it.From, rcpts: rcpts, msg: parts, requireTLS: it.RequireTLS})
				now := time.Now().UTC()
				mu.Lock()
				defer mu.Unlock()
				for j, i := range idx {
					r := &it.Recipients[i]
					r.LastAttempt = now
					if e := res[j]; e == nil {
						r.State, r.Code, r.Status, r.Diagnostic = stateSent, 250, "2.0.0", ""
					} else {
						r.Code, r.Status, r.Diagnostic, r.RemoteMTA = e.code, e.status, e.msg, e.mta
						if e.perm {
							r.State = stateFailed
						}
					}
				}
				// Record progress per domain, so what was delivered is
				// not sent again after a crash.
				if err := s.queue.UpdateOutbound(sctx, it); err != nil {
					s.log.Error("submission: recording delivery", "item", it.ID, "err", err)
				}
			}()
		}
		wg.Wait()
	}

	now := time.Now().UTC()
	if ctx.Err() == nil && now.Sub(it.Created) >= s.cfg.GiveUp {
		for i := range it.Recipients {
			r := &it.Recipients[i]
			if r.State == statePending {
				r.State = stateFailed
				last := r.Diagnostic
				if r.Code != 0 {
					last = fmt.Sprintf("%d %s %s", r.Code, r.Status, r.Diagnostic)
				}
				r.Code, r.Status = 0, "4.4.7"
				r.Diagnostic = printable(fmt.Sprintf("gave up after %s; last error: %s", s.cfg.GiveUp.Round(time.Second), last), 512)
			}
		}
	}

	if ctx.Err() == nil {
		s.report(sctx, it, msg, now)
	}

	done := true
	for _, r := range it.Recipients {
		if r.State == statePending || (r.State == stateFailed && !r.Reported) {
			done = false
		}
	}
	if done {
		if err := s.queue.DeleteOutbound(sctx, it.ID); err != nil {
			s.log.Error("submission: removing a finished item", "item", it.ID, "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		// Interrupted by a shutdown: not the remote's fault, so no
		// backoff; due again at the next start.
		it.Attempts--
		it.NextAttempt = now
		if err := s.queue.UpdateOutbound(sctx, it); err != nil {
			s.log.Error("submission: recording an interrupted attempt", "item", it.ID, "err", err)
		}
		return
	}
	s.reschedule(sctx, it, now)
}

// report tells the sender about recipients that failed for good, with
// a delivery status notification in their incoming queue.
func (s *Submission) report(ctx context.Context, it *storage.OutboundItem, msg []byte, now time.Time) {
	var failed []int
	for i, r := range it.Recipients {
		if r.State == stateFailed && !r.Reported {
			failed = append(failed, i)
		}
	}
	if len(failed) == 0 {
		return
	}
	err := s.sendDSN(ctx, it, failed, msg, now)
	var se *smtp.SMTPError
	switch {
	case err == nil:
	case errors.As(err, &se) && se.Code >= 500:
		// The sender's account is gone: nobody to tell.
		s.log.Warn("submission: delivery status notification undeliverable, dropped", "item", it.ID, "to", it.From, "err", err)
	case now.Sub(it.Created) >= 2*s.cfg.GiveUp:
		s.log.Warn("submission: delivery status notification still undeliverable, dropped", "item", it.ID, "to", it.From, "err", err)
	default:
		s.log.Info("submission: delivery status notification deferred", "item", it.ID, "to", it.From, "err", err)
		return
	}
	for _, i := range failed {
		it.Recipients[i].Reported = true
	}
}

// reschedule sets the item's next attempt after a temporary failure:
// RetryBase after the first, doubling each time, at most RetryMax.
func (s *Submission) reschedule(ctx context.Context, it *storage.OutboundItem, now time.Time) {
	it.NextAttempt = now.Add(s.backoff(it.Attempts))
	if err := s.queue.UpdateOutbound(ctx, it); err != nil {
		s.log.Error("submission: rescheduling", "item", it.ID, "err", err)
	}
}

// backoff is the delay after the attempts-th failed attempt.
func (s *Submission) backoff(attempts int) time.Duration {
	delay := s.cfg.RetryBase
	for i := 1; i < attempts && delay < s.cfg.RetryMax; i++ {
		delay *= 2
	}
	return min(delay, s.cfg.RetryMax)
}

// outgoing is the message as it leaves: our Received field and the
// DKIM signature on top of what the user submitted.
func (s *Submission) outgoing(it *storage.OutboundItem, msg []byte) [][]byte {
	parts := [][]byte{[]byte(s.received(it.ID, it.Created))}
	sig, err := s.dkimSignature(msg)
	if err != nil {
		// The message was checked when it was submitted; if it cannot be
		// signed now it leaves unsigned rather than not at all.
		s.log.Error("submission: DKIM signing failed; sending unsigned", "item", it.ID, "err", err)
	} else {
		parts = append(parts, []byte(sig))
	}
	return append(parts, msg)
}

// domainOf is the normalized domain of an address.
func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return smtpserver.NormDomain(addr[i+1:])
		}
	}
	return ""
}
