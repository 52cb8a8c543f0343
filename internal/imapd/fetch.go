package imapd

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// Fetch answers FETCH from what costs least: UID, FLAGS, RFC822.SIZE and
// INTERNALDATE from the hub's list; ENVELOPE, BODYSTRUCTURE and the
// top-level header (HEADER, HEADER.FIELDS) from the Indexer's meta; only
// other sections and BINARY read the message itself.
//
// With CHANGEDSINCE (RFC 7162 §3.1.4) only the messages whose MODSEQ is
// above it are answered, and with VANISHED (§3.2.6) the UIDs of the set
// expunged since go first, as VANISHED (EARLIER).
func (s *session) Fetch(w *imapproto.FetchWriter, kind imapproto.NumKind, numSet imap.NumSet, opts *imapproto.FetchOptions) error {
	v := s.view
	options := &opts.FetchOptions
	if opts.Vanished && options.ChangedSince > 0 {
		if err := v.writeVanished(w.Updates(), numSet, options.ChangedSince); err != nil {
			return err
		}
	}
	targets := v.resolve(numSet)
	// Pending updates first: a keyword's FLAGS before a FETCH shows it.
	// After resolve: what the targets show was applied to the hub, and so
	// queued, before they were read.
	if err := v.tracker.Poll(w.Updates(), false); err != nil {
		return fmt.Errorf("imapd: writing mailbox updates: %w", err)
	}
	if options.ChangedSince > 0 {
		kept := targets[:0]
		for _, t := range targets {
			if t.e.modSeq > options.ChangedSince {
				kept = append(kept, t)
			}
		}
		targets = kept
	}
	if len(targets) == 0 {
		return nil
	}
	if options.ChangedSince > 0 {
		options.ModSeq = true // CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1)
	}

	// A non-PEEK body section sets \Seen (RFC 9051 §6.4.5), in one store
	// call; the new flags go out with the responses.
	var seen map[uint32]mailstore.Message
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
			seen = make(map[uint32]mailstore.Message, len(updated))
			for _, m := range updated {
				seen[m.UID] = m
			}
		}
	}

	plan := planFetch(options)
	condstore := s.conn.Enabled(imap.CapCondStore)
	gone := false
	// Stores that read many metas in one go (one transaction) get asked
	// for a chunk at a time.
	mm, batch := s.store.(metaManyer)
	wires := &v.hub.wires
	for i, t := range targets {
		if batch && plan.meta != 0 && i%metaChunk == 0 {
			ids := make([]string, 0, metaChunk)
			for _, u := range targets[i:min(i+metaChunk, len(targets))] {
				if plan.meta == metaWire && wires.get(u.e.id) != nil {
					continue // loadMeta takes it from the cache
				}
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
		st := fetchState{flags: t.e.flags, modSeq: t.e.modSeq, condstore: condstore}
		if m, ok := seen[t.uid]; ok {
			st.flags, st.modSeq, st.flagsChanged = m.Flags, m.ModSeq, true
		}
		err := s.fetchOne(w, t, st, options, plan)
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
	switch {
	case o.BodyStructure == nil:
	case o.BodyStructure.Extended:
		p.meta |= metaWire // the structure only when there is no wire form
	default:
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

// fetchState is a message's flags as a FETCH answers them.
type fetchState struct {
	flags        []string
	modSeq       uint64
	flagsChanged bool // the FETCH set \Seen: FLAGS (and MODSEQ) go out
	condstore    bool
}

func (s *session) fetchOne(w *imapproto.FetchWriter, t target, st fetchState, o *imap.FetchOptions, plan fetchPlan) error {
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
	secs := &sections{raw: raw, memo: len(o.BodySection)+len(o.BinarySection)+len(o.BinarySectionSize) > 1}
	bodies := make([][]byte, len(o.BodySection))
	for i, sec := range o.BodySection {
		var b []byte
		if raw == nil {
			b = headerSection(meta.Header, sec)
		} else {
			b = secs.body(sec)
		}
		bodies[i] = partial(b, sec.Partial)
	}
	binaries := make([][]byte, len(o.BinarySection))
	for i, sec := range o.BinarySection {
		b, _, err := secs.binary(sec.Part)
		if err != nil {
			return err
		}
		binaries[i] = partial(b, sec.Partial)
	}
	sizes := make([]uint32, len(o.BinarySectionSize))
	for i, sec := range o.BinarySectionSize {
		b, _, err := secs.binary(sec.Part)
		if err != nil {
			return err
		}
		sizes[i] = uint32(len(b))
	}

	rw := w.CreateMessage(t.seq)
	rw.WriteUID(imap.UID(t.uid))
	if o.Flags || st.flagsChanged {
		flags := imapFlags(st.flags)
		if t.recent {
			flags = append(flags, imap.Flag(`\Recent`))
		}
		rw.WriteFlags(flags)
	}
	if o.ModSeq || (st.flagsChanged && st.condstore) {
		rw.WriteModSeq(max(st.modSeq, 1))
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
		if o.BodyStructure.Extended && meta.BodyStructureWire != nil {
			rw.WriteBodyStructureWire(meta.BodyStructureWire)
		} else {
			rw.WriteBodyStructure(meta.BodyStructure)
		}
	}
	for i, sec := range o.BodySection {
		if err := writeLiteral(rw.WriteBodySection(sec, int64(len(bodies[i]))), bodies[i]); err != nil {
			return err
		}
	}
	for i, sec := range o.BinarySection {
		wc := rw.WriteBinarySection(sec, int64(len(binaries[i])))
		if bytes.IndexByte(binaries[i], 0) >= 0 {
			wc = rw.WriteBinarySection8(sec, int64(len(binaries[i])))
		}
		if err := writeLiteral(wc, binaries[i]); err != nil {
			return err
		}
	}
	for i, sec := range o.BinarySectionSize {
		rw.WriteBinarySectionSize(sec, sizes[i])
	}
	if testHookFetchResponse != nil {
		testHookFetchResponse(t.uid)
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("imapd: writing a FETCH response: %w", err)
	}
	return nil
}

// writeVanished writes VANISHED (EARLIER) for the UIDs of set expunged
// since modSeq (UID FETCH ... (CHANGEDSINCE m VANISHED)).
func (v *view) writeVanished(w *imapproto.UpdateWriter, set imap.NumSet, modSeq uint64) error {
	uidSet, ok := set.(imap.UIDSet)
	if !ok {
		return nil
	}
	gone := v.vanishedSince(modSeq, uidSet)
	if len(gone) == 0 {
		return nil
	}
	return w.WriteVanished(gone, true)
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
//
// BODYSTRUCTURE's wire form alone (want is metaWire) comes from the
// hub's cache when it is there, and goes into it when read.
func (s *session) loadMeta(e *entry, want int) (*Meta, []byte, error) {
	var wires *wireCache
	if s.view != nil {
		wires = &s.view.hub.wires
	}
	if want == metaWire && wires != nil {
		if w := wires.get(e.id); w != nil {
			return &Meta{BodyStructureWire: w}, nil, nil
		}
	}
	b, ok := s.prefetched[e.id]
	var err error
	if !ok {
		b, err = s.store.Meta(e.id)
	}
	if err == nil {
		if m, err := decodeMeta(b, want); err == nil {
			if want&metaWire != 0 && m.BodyStructureWire != nil && wires != nil {
				wires.put(e.id, m.BodyStructureWire)
			}
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
