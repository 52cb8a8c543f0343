package fulltext

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// sampleSegment is a small segment's two streams, as flush writes them.
func sampleSegment() (head, post []byte) {
	m := newMem()
	m.add(3, "a1", map[string]uint8{"hello": flagBody, "world": flagBody | flagHeader})
	m.add(7, "b22", map[string]uint8{"hello": flagHeader, "zebra": flagBody})
	var terms [][]byte
	var sizes []uint32
	for _, t := range []string{"hello", "world", "zebra"} {
		p := m.terms[t].postings()
		terms = append(terms, []byte(t))
		sizes = append(sizes, uint32(len(p)))
		post = append(post, p...)
	}
	return encodeHead(m.docs, m.ids, terms, sizes, uint64(len(post))), post
}

// readSegment decodes a head and every posting list it names in post.
func readSegment(head, post []byte) (*segment, map[string][][2]uint32, error) {
	s, err := decodeHead(head)
	if err != nil {
		return nil, nil, err
	}
	if s.postLen > uint64(len(post)) {
		return nil, nil, errCorrupt
	}
	out := map[string][][2]uint32{}
	for i := range s.termStart {
		p := post[s.postOff[i] : s.postOff[i]+uint64(s.postSize[i])]
		t := string(s.term(i))
		if err := decodePostings(p, func(d uint32, f uint8) { out[t] = append(out[t], [2]uint32{d, uint32(f)}) }); err != nil {
			return nil, nil, err
		}
	}
	return s, out, nil
}

func TestSegmentRoundTrip(t *testing.T) {
	head, post := sampleSegment()
	if len(head) != blockSize {
		t.Fatalf("head of %d bytes, want one block", len(head))
	}
	// The vector of docs/formats.md §9.1.
	end := bytes.LastIndexFunc(head, func(r rune) bool { return r != 0 }) + 1
	if got := hex.EncodeToString(head[:end]); got != "46545331000000020000000300000000000000040000000000000021040261310403623232000568656c6c6f020005776f726c640100057a6562726101" {
		t.Errorf("head %s", got)
	}
	if got := hex.EncodeToString(post); got != "11121321" {
		t.Errorf("postings %s", got)
	}
	if got := hex.EncodeToString(encodeState(8, 2, []*segment{{id: 1, postBlks: 1, headBlks: 1}})); got != "46544d31080201010101" {
		t.Errorf("list %s", got)
	}
	s, lists, err := readSegment(head, post)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.docs, s.ids, lists); got != "[3 7] [a1 b22] map[hello:[[3 1] [7 2]] world:[[3 3]] zebra:[[7 1]]]" {
		t.Fatalf("read back %s", got)
	}
	if i := s.findTerm([]byte("world")); i != 1 {
		t.Fatalf("findTerm: %d", i)
	}
	var hits []string
	s.containing([]byte("l"), func(i int) { hits = append(hits, string(s.term(i))) })
	if fmt.Sprint(hits) != "[hello world]" {
		t.Fatalf("containing: %v", hits)
	}
	// Every byte of the head matters: a change is refused or read as
	// something that still holds together.
	for i := range 64 {
		bad := bytes.Clone(head)
		bad[i] ^= 0x40
		readSegment(bad, post)
	}
}

// FuzzSegment: the segment decoder takes any bytes without panicking or
// allocating without bound, and what it accepts holds together: tokens
// sorted and unique, posting lists within the postings.
func FuzzSegment(f *testing.F) {
	head, post := sampleSegment()
	f.Add(head[:200], post)
	f.Fuzz(func(t *testing.T, head, post []byte) {
		decodeState(post) // the list of segments: any bytes, no panic
		s, _, err := readSegment(head, post)
		if err != nil {
			return
		}
		for i := 1; i < len(s.termStart); i++ {
			if bytes.Compare(s.term(i-1), s.term(i)) >= 0 {
				t.Fatalf("tokens out of order: %q %q", s.term(i-1), s.term(i))
			}
		}
		for i := 1; i < len(s.docs); i++ {
			if s.docs[i-1] >= s.docs[i] {
				t.Fatal("documents out of order")
			}
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpus of FuzzSegment (run with
// FULLTEXT_WRITE_SEEDS=1 after a change of the format).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FULLTEXT_WRITE_SEEDS") == "" {
		t.Skip("FULLTEXT_WRITE_SEEDS not set")
	}
	head, post := sampleSegment()
	end := bytes.LastIndexFunc(head, func(r rune) bool { return r != 0 }) + 1
	seeds := map[string][2][]byte{
		"sample":    {head[:end], post},
		"truncated": {head[:end-3], post},
		"nopost":    {head[:end], post[:2]},
		"empty":     {nil, nil},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSegment")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range seeds {
		b := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s[0])) + ")\n[]byte(" + strconv.Quote(string(s[1])) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeftToTheScan: a message larger than the index takes, or with a
// token longer than it keeps, is not indexed (the scan reads it).
func TestLeftToTheScan(t *testing.T) {
	var tz tokenizer
	if _, ok := tz.tokens(bytes.Repeat([]byte("a "), maxMessage/2+1)); ok {
		t.Error("a message over the limit was indexed")
	}
	if _, ok := tz.tokens([]byte("Subject: x\r\n\r\n" + string(bytes.Repeat([]byte("b"), maxToken+1)) + "\r\n")); ok {
		t.Error("a token over the limit was indexed")
	}
	toks, ok := tz.tokens([]byte("Subject: Hi there\r\n\r\nHi, Ünïcode 42x!\r\n"))
	if !ok || fmt.Sprint(toks) != "map[42x:1 hi:3 there:2 ünïcode:1]" {
		t.Errorf("tokens %v %v", toks, ok)
	}
}
