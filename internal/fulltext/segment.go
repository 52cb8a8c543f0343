package fulltext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// A segment is an immutable part of the index: the messages it covers
// (its documents, each a document number and the message's id), its
// dictionary (the sorted tokens of their text) and, per token, a posting
// list (the documents whose text holds it, each with where: a text part,
// a header field value, or both). On disk a segment is two byte streams,
// the postings and the head (the documents and the dictionary), each
// padded with zeros to whole blocks of blockSize and sealed block by
// block in the local store, so every value the index writes has the same
// size. docs/formats.md describes the bytes.

const (
	blockSize  = 64 << 10
	headFixed  = 28 // magic, document count, token count, postings length, head body length
	flagBody   = 1  // in a text part (SEARCH BODY and TEXT)
	flagHeader = 2  // in a header field's value (SEARCH TEXT only)

	// maxToken is the longest token the index holds; a message with a
	// longer one is left to the scan.
	maxToken = 1000
)

var segMagic = [4]byte{'F', 'T', 'S', '1'}

var errCorrupt = errors.New("fulltext: malformed index segment")

// segment is a segment's head in memory: what a search scans. The
// postings stay on disk and are read by block.
type segment struct {
	id       uint64
	postBlks uint32 // blocks of postings, numbered 0…postBlks-1
	headBlks uint32 // blocks of head, numbered after them
	postLen  uint64

	docs []uint32 // document numbers, increasing
	ids  []string // the message id of each

	terms     []byte   // the tokens in order, each followed by '\n'
	termStart []uint32 // where each token starts in terms
	postOff   []uint64 // where each token's postings start in the postings
	postSize  []uint32 // and their length
}

func (s *segment) term(i int) []byte {
	end := len(s.terms) - 1
	if i+1 < len(s.termStart) {
		end = int(s.termStart[i+1]) - 1
	}
	return s.terms[s.termStart[i]:end]
}

// encodeHead writes a segment's head stream: the fixed part, the
// documents and the dictionary, padded to whole blocks.
func encodeHead(docs []uint32, ids []string, terms [][]byte, postSize []uint32, postLen uint64) []byte {
	b := make([]byte, headFixed, headFixed+len(docs)*24+len(terms)*8)
	copy(b, segMagic[:])
	binary.BigEndian.PutUint32(b[4:], uint32(len(docs)))
	binary.BigEndian.PutUint32(b[8:], uint32(len(terms)))
	binary.BigEndian.PutUint64(b[12:], postLen)
	prev := uint32(0)
	for i, d := range docs {
		b = binary.AppendUvarint(b, uint64(d+1-prev))
		prev = d + 1
		b = binary.AppendUvarint(b, uint64(len(ids[i])))
		b = append(b, ids[i]...)
	}
	var last []byte
	for i, t := range terms {
		p := commonPrefix(last, t)
		b = binary.AppendUvarint(b, uint64(p))
		b = binary.AppendUvarint(b, uint64(len(t)-p))
		b = append(b, t[p:]...)
		b = binary.AppendUvarint(b, uint64(postSize[i]))
		last = t
	}
	binary.BigEndian.PutUint64(b[20:], uint64(len(b)-headFixed))
	return pad(b)
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// pad fills b with zeros to whole blocks (at least one).
func pad(b []byte) []byte {
	n := max(1, (len(b)+blockSize-1)/blockSize) * blockSize
	return append(b, make([]byte, n-len(b))...)
}

// decodeHead reads a head stream, checking everything a search relies
// on: document numbers increasing, tokens sorted, unique, non-empty and
// without newlines, posting lengths adding up to the postings' length.
func decodeHead(b []byte) (*segment, error) {
	if len(b) < headFixed || !bytes.Equal(b[:4], segMagic[:]) {
		return nil, errCorrupt
	}
	ndocs := binary.BigEndian.Uint32(b[4:])
	nterms := binary.BigEndian.Uint32(b[8:])
	postLen := binary.BigEndian.Uint64(b[12:])
	bodyLen := binary.BigEndian.Uint64(b[20:])
	if bodyLen > uint64(len(b)-headFixed) || ndocs == 0 || uint64(ndocs) > bodyLen/2 || uint64(nterms) > bodyLen/3 {
		return nil, errCorrupt
	}
	r := reader{b: b[headFixed : headFixed+bodyLen]}
	for _, c := range b[headFixed+bodyLen:] {
		if c != 0 {
			return nil, errCorrupt
		}
	}
	s := &segment{postLen: postLen, docs: make([]uint32, ndocs), ids: make([]string, ndocs)}
	prev := uint64(0)
	for i := range s.docs {
		d := r.uvarint()
		n := r.uvarint()
		if d == 0 || prev+d > 1<<32 || n > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		prev += d
		s.docs[i] = uint32(prev - 1)
		s.ids[i] = string(r.bytes(int(n)))
	}
	s.termStart = make([]uint32, nterms)
	s.postOff = make([]uint64, nterms)
	s.postSize = make([]uint32, nterms)
	terms := make([]byte, 0, len(r.b))
	var last []byte
	off := uint64(0)
	for i := range nterms {
		p, n := r.uvarint(), r.uvarint()
		if p > uint64(len(last)) || n > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		suffix := r.bytes(int(n))
		start := len(terms)
		terms = append(terms, last[:p]...)
		terms = append(terms, suffix...)
		t := terms[start:]
		size := r.uvarint()
		if len(t) == 0 || len(t) > maxToken || bytes.IndexByte(suffix, '\n') >= 0 || (i > 0 && bytes.Compare(last, t) >= 0) ||
			size == 0 || size > postLen-off || uint64(start) >= 1<<32 {
			return nil, errCorrupt
		}
		terms = append(terms, '\n')
		last = t
		s.termStart[i] = uint32(start)
		s.postOff[i] = off
		s.postSize[i] = uint32(size)
		off += size
	}
	if r.err || len(r.b) != 0 || off != postLen {
		return nil, errCorrupt
	}
	s.terms = bytes.Clone(terms) // the exact size: it lives as long as the segment
	return s, nil
}

type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.err = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// appendPosting appends one entry of a posting list: document doc, after
// prev (the previous entry's document plus one; 0 before the first), with
// flags. It returns the new prev.
func appendPosting(b []byte, prev, doc uint32, flags uint8) ([]byte, uint32) {
	return binary.AppendUvarint(b, uint64(doc+1-prev)<<2|uint64(flags)), doc + 1
}

// decodePostings calls fn for each entry of a posting list, checking
// that documents increase and flags are set.
func decodePostings(b []byte, fn func(doc uint32, flags uint8)) error {
	prev := uint64(0)
	for len(b) > 0 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return errCorrupt
		}
		b = b[n:]
		flags, d := uint8(v&3), v>>2
		if flags == 0 || d == 0 || prev+d > 1<<32 {
			return errCorrupt
		}
		prev += d
		fn(uint32(prev-1), flags)
	}
	return nil
}

// findTerm is the index of token t in s, or -1.
func (s *segment) findTerm(t []byte) int {
	i := sort.Search(len(s.termStart), func(i int) bool { return bytes.Compare(s.term(i), t) >= 0 })
	if i < len(s.termStart) && bytes.Equal(s.term(i), t) {
		return i
	}
	return -1
}

// prefixRange is the range of tokens of s that start with p.
func (s *segment) prefixRange(p []byte) (int, int) {
	lo := sort.Search(len(s.termStart), func(i int) bool { return bytes.Compare(s.term(i), p) >= 0 })
	hi := lo
	for hi < len(s.termStart) && bytes.HasPrefix(s.term(hi), p) {
		hi++
	}
	return lo, hi
}

// containing calls fn with the index of each token of s that holds q
// (which holds no newline), in order.
func (s *segment) containing(q []byte, fn func(i int)) {
	pos := 0
	for pos < len(s.terms) {
		j := bytes.Index(s.terms[pos:], q)
		if j < 0 {
			return
		}
		at := pos + j
		i := sort.Search(len(s.termStart), func(i int) bool { return int(s.termStart[i]) > at }) - 1
		fn(i)
		if i+1 < len(s.termStart) {
			pos = int(s.termStart[i+1])
		} else {
			return
		}
	}
}

func (s *segment) String() string {
	return fmt.Sprintf("segment %d (%d messages, %d tokens)", s.id, len(s.docs), len(s.termStart))
}
