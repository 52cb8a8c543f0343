package imapd

import (
	"errors"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Fetch answers FETCH from what costs least: UID, FLAGS, RFC822.SIZE and
// INTERNALDATE from the hub's list; ENVELOPE, BODYSTRUCTURE and the
// top-level header (HEADER, HEADER.FIELDS) from the Indexer's meta; only
// other sections and BINARY read the message itself.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	v := s.view
	targets := v.resolve(numSet)
	if len(targets) == 0 {
		return nil
	}

	// A non-PEEK body section sets \Seen (RFC 9051 §6.4.5), in one store
	// call; the new flags go out with the responses.
	var seen map[uint32][]string
	if !v.readOnly && setsSeen(options) {
		var unseen []uint32
		for _, t := range targets {
			if !hasFlag(t.e.flags, `\Seen`) {
				unseen = append(unseen, t.uid)
			}
		}
		if len(unseen) > 0 {
			updated, err := s.store.StoreFlags(s.opCtx(), v.hub.name, unseen, mailstore.FlagsAdd, []string{`\Seen`})
			if err != nil {
				return s.storeErr("FETCH", err, imap.ResponseCodeNonExistent)
			}
			v.hub.applyFlags(updated, v)
			seen = make(map[uint32][]string, len(updated))
			for _, m := range updated {
				seen[m.UID] = m.Flags
			}
		}
	}

	plan := planFetch(options)
	gone := false
	// Stores that read many metas in one go (one transaction) get asked
	// for a chunk at a time.
	mm, batch := s.store.(metaManyer)
	for i, t := range targets {
		if batch && plan.meta != 0 && i%metaChunk == 0 {
			ids := make([]string, 0, metaChunk)
			for _, u := range targets[i:min(i+metaChunk, len(targets))] {
				ids = append(ids, u.e.id)
			}
			s.prefetched = make(map[string][]byte, len(ids))
			if metas, err := mm.MetaMany(ids); err == nil {
				for j, b := range metas {
					if b != nil {
						s.prefetched[ids[j]] = b
					}
				}
			}
		}
		flags, changed := t.e.flags, false
		if f, ok := seen[t.uid]; ok {
			flags, changed = f, true
		}
		err := s.fetchOne(w, t, flags, changed, options, plan)
		if errors.Is(err, errGone) {
			gone = true
			continue
		}
		if err != nil {
			return err
		}
	}
	s.prefetched = nil
	if gone {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", Text: "Some messages were expunged meanwhile"}
	}
	return nil
}

// metaManyer is a store that reads many metas at once; *mailstore.Store
// is one. A nil entry means that message has none.
type metaManyer interface {
	MetaMany(ids []string) ([][]byte, error)
}

const metaChunk = 512

func setsSeen(o *imap.FetchOptions) bool {
	for _, sec := range o.BodySection {
		if !sec.Peek {
			return true
		}
	}
	for _, sec := range o.BinarySection {
		if !sec.Peek {
			return true
		}
	}
	return false
}

// fetchPlan says what a FETCH needs per message.
type fetchPlan struct {
	meta    int  // meta parts to decode
	rawBody bool // some section needs the message itself
}

func planFetch(o *imap.FetchOptions) fetchPlan {
	var p fetchPlan
	if o.Envelope {
		p.meta |= metaEnvelope
	}
	if o.BodyStructure != nil {
		p.meta |= metaStructure
	}
	for _, sec := range o.BodySection {
		if fromMetaHeader(sec) {
			p.meta |= metaHeader
		} else {
			p.rawBody = true
		}
	}
	if len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 {
		p.rawBody = true
	}
	return p
}

// fromMetaHeader says whether a section is the top-level header, which
// the meta keeps (unless it was too long).
func fromMetaHeader(sec *imap.FetchItemBodySection) bool {
	return len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierHeader
}

func (s *session) fetchOne(w *imapserver.FetchWriter, t target, flags []string, flagsChanged bool, o *imap.FetchOptions, plan fetchPlan) error {
	// Everything is read before the response starts, so that a message
	// that vanished is left out cleanly.
	var (
		meta *Meta
		raw  []byte
		err  error
	)
	if plan.meta != 0 {
		if meta, raw, err = s.loadMeta(t.e, plan.meta); err != nil {
			return err
		}
	}
	needRaw := plan.rawBody || (plan.meta&metaHeader != 0 && meta.HeaderTruncated)
	if needRaw && raw == nil {
		if raw, err = s.store.Raw(s.ctx, t.e.id); err != nil {
			return s.rawErr(err)
		}
	}
	bodies := make([][]byte, len(o.BodySection))
	for i, sec := range o.BodySection {
		var b []byte
		if raw == nil {
			b = headerSection(meta.Header, sec)
		} else {
			b = bodySection(raw, sec)
		}
		bodies[i] = partial(b, sec.Partial)
	}
	binaries := make([][]byte, len(o.BinarySection))
	for i, sec := range o.BinarySection {
		b, _, err := binarySection(raw, sec.Part)
		if err != nil {
			return err
		}
		binaries[i] = partial(b, sec.Partial)
	}
	sizes := make([]uint32, len(o.BinarySectionSize))
	for i, sec := range o.BinarySectionSize {
		b, _, err := binarySection(raw, sec.Part)
		if err != nil {
			return err
		}
		sizes[i] = uint32(len(b))
	}

	rw := s.createMessage(w, t.seq)
	rw.WriteUID(imap.UID(t.uid))
	if o.Flags || flagsChanged {
		rw.WriteFlags(imapFlags(flags))
	}
	if o.InternalDate {
		rw.WriteInternalDate(t.e.date)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(t.e.size)
	}
	if o.Envelope {
		rw.WriteEnvelope(meta.Envelope)
	}
	if o.BodyStructure != nil {
		rw.WriteBodyStructure(meta.BodyStructure)
	}
	for i, sec := range o.BodySection {
		if err := writeLiteral(rw.WriteBodySection(sec, int64(len(bodies[i]))), bodies[i]); err != nil {
			return err
		}
	}
	for i, sec := range o.BinarySection {
		if err := writeLiteral(rw.WriteBinarySection(sec, int64(len(binaries[i]))), binaries[i]); err != nil {
			return err
		}
	}
	for i, sec := range o.BinarySectionSize {
		rw.WriteBinarySectionSize(sec, sizes[i])
	}
	if testHookFetchResponse != nil {
		testHookFetchResponse(t.uid)
	}
	return s.endMessage(rw)
}

// testHookFetchResponse, set only by tests, runs while a message's FETCH
// response is half written.
var testHookFetchResponse func(uid uint32)

func writeLiteral(wc interface {
	Write([]byte) (int, error)
	Close() error
}, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("imapd: writing a literal: %w", err)
	}
	return nil
}

// loadMeta returns a message's meta. When the store has none (the Indexer
// failed, or the message came from elsewhere) or it is damaged, it is
// computed from the message, which is then returned too.
func (s *session) loadMeta(e *entry, want int) (*Meta, []byte, error) {
	b, ok := s.prefetched[e.id]
	var err error
	if !ok {
		b, err = s.store.Meta(e.id)
	}
	if err == nil {
		if m, err := decodeMeta(b, want); err == nil {
			return m, nil, nil
		}
		s.log.Debug("imapd: damaged meta; recomputing", "id", e.id)
	}
	raw, err := s.store.Raw(s.ctx, e.id)
	if err != nil {
		return nil, nil, s.rawErr(err)
	}
	return computeMeta(raw), raw, nil
}

func (s *session) rawErr(err error) error {
	if errors.Is(err, mailstore.ErrNoMessage) {
		return errGone
	}
	return s.storeErr("reading a message", err, imap.ResponseCodeNonExistent)
}
