package mailstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Bulk writes: many messages, in any mailboxes, stored as APPEND stores
// one (the same blob, document and index entry, so sync and the other
// devices see ordinary mail), with the per-message work (the indexer's
// parse, sealing the blob) spread over the CPUs and everything written
// in one transaction of the local store. An import feeds it batches of
// a few hundred messages. The full-text index takes the messages from
// the store's events as it takes any other (docs/design.md, "Search"),
// so it catches up behind the writes.

// BulkMessage is one message of AppendBulk.
type BulkMessage struct {
	// ID is the document id: "" for a random one, or a derived one
	// (ImportDocID) so that storing the same message again is noticed.
	ID    string
	Mbox  string
	Raw   []byte
	Flags []string
	Date  time.Time // zero: now
}

// BulkResult is what became of one message of AppendBulk.
type BulkResult struct {
	Message Message // its entry (UID, MODSEQ, ...), when stored or Existed
	// Existed says a message with its id was stored already (by an
	// earlier run of an import, or by another device): nothing written.
	Existed bool
	// Err is this message's own failure (no such mailbox, too big);
	// the others are stored.
	Err error
}

// ImportDocID is the document id of the n-th message (from 0) with
// content hash sum that an import puts in mbox: a run that stores it
// again, on this device or another, finds it stored. n tells apart
// copies of one message in one source, which are all kept. The id is an
// HMAC under the account's document-id key, as every derived id, so the
// provider learns nothing from it.
func (s *Store) ImportDocID(mbox string, sum []byte, n int) string {
	return seal.DocID(&s.keys.DocID, "import:"+NormalizeName(mbox)+":"+hex.EncodeToString(sum)+":"+strconv.Itoa(n))
}

// Known says a message with document id id is stored (here, or synced
// from another device and not yet indexed).
func (s *Store) Known(id string) bool {
	s.mu.Lock()
	_, ok := s.byID[id]
	s.mu.Unlock()
	if ok {
		return true
	}
	_, err := s.docs.Get(id)
	return err == nil
}

// AppendBulk stores msgs, in one transaction of the local store (and
// the parse and sealing of each message in parallel before it). Each
// message gets its result; the error is for a failure of the whole
// write (nothing of it stored).
func (s *Store) AppendBulk(ctx context.Context, msgs []BulkMessage) ([]BulkResult, error) {
	defer s.poke()
	res := make([]BulkResult, len(msgs))
	todo := make([]*pending, len(msgs))
	origin := originOf(ctx)
	var mu sync.Mutex
	seen := map[string]int{} // id -> index of its first message in msgs
	var work []int
	for i := range msgs {
		m := &msgs[i]
		m.Mbox = NormalizeName(m.Mbox)
		if len(m.Raw) > MaxMessageSize {
			res[i].Err = fmt.Errorf("mailstore: message larger than %d bytes", MaxMessageSize)
			continue
		}
		s.mu.Lock()
		mb := s.mboxes[m.Mbox]
		existing := s.byID[m.ID]
		s.mu.Unlock()
		if mb == nil {
			res[i].Err = ErrNoMailbox
			continue
		}
		if m.ID == "" {
			id, err := seal.RandomDocID()
			if err != nil {
				return nil, fmt.Errorf("mailstore: making a message's document id: %w", err)
			}
			m.ID = id
		} else {
			if existing != nil {
				res[i] = BulkResult{Message: s.messageOf(existing), Existed: true}
				continue
			}
			if j, ok := seen[m.ID]; ok {
				res[i].Err = fmt.Errorf("mailstore: document id given twice (also to message %d)", j)
				continue
			}
			if _, err := s.docs.Get(m.ID); err == nil {
				// Stored by another device, not indexed here yet:
				// its version (and flags) is the one to keep.
				if err := s.applyMessage(ctx, m.ID); err != nil && !errors.Is(err, context.Canceled) {
					res[i].Err = fmt.Errorf("mailstore: indexing a message as stored by another device: %w", err)
					continue
				}
				res[i].Existed = true
				s.mu.Lock()
				if e := s.byID[m.ID]; e != nil {
					res[i].Message = e.message()
				}
				s.mu.Unlock()
				continue
			}
		}
		seen[m.ID] = i
		work = append(work, i)
	}
	// Parse and seal in parallel.
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(work)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				m := &msgs[i]
				date := m.Date
				if date.IsZero() {
					date = time.Now()
				}
				meta := s.metaFor(m.Raw)
				md := messageDoc{Type: typeMessage, Mbox: m.Mbox, Blob: s.docs.BlobID(m.Raw), Size: int64(len(m.Raw)), Date: date.UTC().Truncate(time.Second), Flags: normFlags(m.Flags)}
				body, _ := json.Marshal(md)
				stage, err := s.docs.StageFiles([][]byte{m.Raw}, []docsync.Doc{{ID: m.ID, Body: body}})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("mailstore: storing messages: %w", err)
					}
					mu.Unlock()
					continue
				}
				todo[i] = &pending{origin: origin, id: m.ID, md: md, meta: meta, stage: stage}
			}
		}()
	}
	for _, i := range work {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		for _, p := range todo {
			if p != nil {
				p.stage.Discard()
			}
		}
		return nil, firstErr
	}
	batch := make([]*pending, 0, len(work))
	stages := make([]*docsync.Staged, 0, len(work))
	for _, i := range work {
		batch = append(batch, todo[i])
		stages = append(stages, todo[i].stage)
	}
	if len(batch) == 0 {
		return res, nil
	}
	// The blobs' files are durable, and named, before the transaction
	// that names them commits.
	if err := s.docs.SyncStaged(stages...); err != nil {
		return nil, fmt.Errorf("mailstore: storing messages: %w", err)
	}
	s.mu.Lock()
	s.addLocked(batch)
	for _, i := range work { // under the lock: a STORE may change an entry at once
		if p := todo[i]; p.err == nil {
			res[i].Message = p.m.message()
		}
	}
	s.mu.Unlock()
	for _, i := range work {
		p := todo[i]
		if p.err != nil {
			if errors.Is(p.err, ErrNoMailbox) { // deleted meanwhile
				res[i].Err = p.err
				continue
			}
			return nil, p.err
		}
	}
	for _, i := range work {
		if todo[i].err == nil {
			todo[i].stage.Committed()
		}
	}
	return res, nil
}

// messageOf is m's Message, under the store's lock.
func (s *Store) messageOf(m *msg) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.message()
}
