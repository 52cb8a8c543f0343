package fulltext

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/mailtext"
	"github.com/bitmask-go/bitmask/internal/recovered"
)

var _ Searcher = (*Index)(nil)

// bitset is a set of document numbers.
type bitset []uint64

func newBitset(n uint32) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) has(d uint32) bool { return int(d/64) < len(b) && b[d/64]&(1<<(d%64)) != 0 }
func (b bitset) set(d uint32)      { b[d/64] |= 1 << (d % 64) }
func (b bitset) and(o bitset) {
	for i := range b {
		b[i] &= o[i]
	}
}
func (b bitset) fits(d uint32) bool { return int(d/64) < len(b) }

// piece is a run of letters and digits of a query, with whether a
// separator stands before it and after it in the query.
type piece struct {
	text          []byte
	before, after bool
}

// splitQuery cuts a query (valid UTF-8) into its pieces.
func splitQuery(q string) []piece {
	var out []piece
	b := []byte(q)
	eachToken(b, func(t []byte) {
		start := cap(b) - cap(t) // t is a slice of b: its offset
		out = append(out, piece{text: t, before: start > 0, after: start+len(t) < len(b)})
	})
	return out
}

// Search implements Searcher. A query of letters and digits only is
// answered from the dictionary (exact: such a string is in a text
// exactly when it is in one of its tokens). A query with other
// characters is answered for the messages whose tokens could hold it,
// each read to check (so the answer is exact too). An empty query
// matches every indexed message; one of separators only, or not valid
// UTF-8, has no answer here (ok false).
func (ix *Index) Search(ctx context.Context, mbox string, uidValidity uint32, query string, all bool) ([]uint32, func(uint32) bool, bool, error) {
	info, err := ix.src.Mailbox(mbox)
	if err != nil || info.UIDValidity != uidValidity || !utf8.ValidString(query) {
		return nil, nil, false, nil
	}
	pieces := splitQuery(query)
	if query != "" && len(pieces) == 0 {
		return nil, nil, false, nil
	}
	msgs, err := ix.src.Messages(mbox)
	if err != nil {
		return nil, nil, false, nil
	}
	docOf, covered, hits, err := ix.lookup(msgs, query, pieces, all)
	if err != nil {
		return nil, nil, false, err
	}
	indexed := func(uid uint32) bool {
		_, ok := slices.BinarySearch(covered, uid)
		return ok
	}
	var out []uint32
	var check []mailstore.Message
	verify := len(pieces) > 0 && len(pieces[0].text) != len(query)
	for i, m := range msgs {
		if d := docOf[i]; d != ^uint32(0) && hits.has(d) {
			if verify {
				check = append(check, m)
			} else {
				out = append(out, m.UID)
			}
		}
	}
	if verify {
		out, err = ix.verify(ctx, check, query, all)
		if err != nil {
			return nil, nil, false, err
		}
	}
	return out, indexed, true, nil
}

// lookup finds the messages' documents (^0 for one not indexed), the
// UIDs of those indexed, and the documents the index says hold the
// query (exactly, or as candidates when the query holds separators).
func (ix *Index) lookup(msgs []mailstore.Message, query string, pieces []piece, all bool) (docOf, covered []uint32, hits bitset, err error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := ix.nextDoc
	docOf = make([]uint32, len(msgs))
	covered = make([]uint32, 0, len(msgs)) // UIDs, increasing
	wanted := newBitset(n)
	for i, m := range msgs {
		d, ok := ix.ids[m.ID]
		docOf[i] = d
		if ok {
			covered = append(covered, m.UID)
			wanted.set(d)
		} else {
			docOf[i] = ^uint32(0)
		}
	}
	if len(covered) == 0 {
		return docOf, covered, wanted, nil
	}
	switch {
	case query == "":
		hits = wanted
	case len(pieces) == 1 && len(pieces[0].text) == len(query):
		hits, err = ix.match(wanted, pieces[0], all)
	default:
		hits = slices.Clone(wanted)
		for _, p := range pieces {
			h, err := ix.match(wanted, p, all)
			if err != nil {
				return nil, nil, nil, err
			}
			hits.and(h)
		}
	}
	return docOf, covered, hits, err
}

// match is the set of wanted documents with a token that can hold piece
// p where it stands in the query: holding it (no separator either side),
// starting with it (a separator before), ending with it (after), or
// being it (both). With all false, only tokens in text parts count.
func (ix *Index) match(wanted bitset, p piece, all bool) (bitset, error) {
	hits := newBitset(uint32(len(wanted) * 64))
	type ref struct {
		off  uint64
		size uint32
	}
	var refs []ref
	add := func(d uint32, f uint8) {
		if (all || f&flagBody != 0) && wanted.has(d) {
			hits.set(d)
		}
	}
	for _, s := range ix.segs {
		// The segment's share of the wanted documents: its terms are
		// read, most frequent first, until all of them are hits.
		want := 0
		for _, d := range s.docs {
			if wanted.has(d) {
				want++
			}
		}
		if want == 0 {
			continue
		}
		refs = refs[:0]
		each := func(i int) { refs = append(refs, ref{s.postOff[i], s.postSize[i]}) }
		switch {
		case p.before && p.after:
			if i := s.findTerm(p.text); i >= 0 {
				each(i)
			}
		case p.before:
			lo, hi := s.prefixRange(p.text)
			for i := lo; i < hi; i++ {
				each(i)
			}
		case p.after:
			s.containing(p.text, func(i int) {
				if bytes.HasSuffix(s.term(i), p.text) {
					each(i)
				}
			})
		default:
			s.containing(p.text, each)
		}
		if len(refs) == 0 {
			continue
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].size > refs[j].size })
		got := 0
		count := func(d uint32, f uint8) {
			if (all || f&flagBody != 0) && wanted.has(d) && !hits.has(d) {
				hits.set(d)
				got++
			}
		}
		cache := map[uint32][]byte{}
		err := ix.st.View(func(tx *localstore.Tx) error {
			for _, r := range refs {
				b, err := readPostings(tx, s, cache, r.off, r.size)
				if err != nil {
					return err
				}
				if err := decodePostings(b, func(d uint32, f uint8) {
					if hits.fits(d) {
						count(d, f)
					}
				}); err != nil {
					return err
				}
				if got == want {
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// The messages in memory.
	m := ix.mem
	for t, post := range m.terms {
		tb := []byte(t)
		ok := false
		switch {
		case p.before && p.after:
			ok = bytes.Equal(tb, p.text)
		case p.before:
			ok = bytes.HasPrefix(tb, p.text)
		case p.after:
			ok = bytes.HasSuffix(tb, p.text)
		default:
			ok = bytes.Contains(tb, p.text)
		}
		if ok {
			if err := decodePostings(post.postings(), func(d uint32, f uint8) {
				if hits.fits(d) {
					add(d, f)
				}
			}); err != nil {
				return nil, err
			}
		}
	}
	return hits, nil
}

// verify reads the candidates' text and keeps those that hold query, as
// the scan does (on as many cores as there are).
func (ix *Index) verify(ctx context.Context, msgs []mailstore.Message, query string, all bool) ([]uint32, error) {
	ok := make([]bool, len(msgs))
	errs := make([]error, len(msgs))
	var next sync.Mutex
	i := 0
	q := []byte(query)
	work := func() {
		var buf bytes.Buffer
		for {
			next.Lock()
			k := i
			i++
			next.Unlock()
			if k >= len(msgs) {
				return
			}
			raw, err := ix.src.Raw(ctx, msgs[k].ID)
			if err != nil {
				if !errors.Is(err, mailstore.ErrNoMessage) {
					errs[k] = err
				}
				continue
			}
			_ = recovered.Do(func() {
				ok[k] = bytes.Contains(mailtext.Text(&buf, raw, all), q)
			})
			if buf.Cap() > 1<<20 {
				buf = bytes.Buffer{}
			}
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(msgs)) - 1 {
		wg.Add(1)
		go func() { defer wg.Done(); work() }()
	}
	work()
	wg.Wait()
	var out []uint32
	for k, m := range msgs {
		if errs[k] != nil {
			return nil, errs[k]
		}
		if ok[k] {
			out = append(out, m.UID)
		}
	}
	return out, nil
}
