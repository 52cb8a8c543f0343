package imapd

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/imapproto"
)

// metaV1 turns a meta into version 1's form (no wire field), as messages
// stored before version 2 have it.
func metaV1(t *testing.T, meta []byte) []byte {
	t.Helper()
	m, err := decodeMeta(meta, metaAll)
	if err != nil {
		t.Fatal(err)
	}
	m.BodyStructureWire = nil
	b := m.encode()
	off := 2
	for range 2 {
		n, k := binary.Uvarint(b[off:])
		off += k + int(n)
	}
	if b[off] != 0 {
		t.Fatalf("wire length %d", b[off])
	}
	v1 := append(bytes.Clone(b[:off]), b[off+1:]...)
	v1[0] = metaVersion1
	return v1
}

// TestMetaWire: the Indexer keeps BODYSTRUCTURE's wire form when every
// session is written the same bytes (ASCII text), not otherwise, and a
// version 1 meta still decodes to the same structure.
func TestMetaWire(t *testing.T) {
	withWire := 0
	for i, raw := range sampleMessages() {
		meta, _ := Indexer(raw)
		m, err := decodeMeta(meta, metaAll)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want := imapproto.BodyStructureWire(m.BodyStructure)
		if !bytes.Equal(m.BodyStructureWire, want) {
			t.Errorf("%d: wire %q, want %q", i, m.BodyStructureWire, want)
		}
		if want != nil {
			withWire++
		}
		old, err := decodeMeta(metaV1(t, meta), metaAll)
		if err != nil {
			t.Fatalf("%d: version 1: %v", i, err)
		}
		if old.BodyStructureWire != nil || !bytes.Equal(imapproto.BodyStructureWire(old.BodyStructure), want) ||
			!bytes.Equal(old.Header, m.Header) || old.Envelope.Subject != m.Envelope.Subject {
			t.Errorf("%d: version 1 decodes differently", i)
		}
		// Asking for the wire form alone decodes the structure only when
		// there is none.
		w, err := decodeMeta(meta, metaWire)
		if err != nil || (w.BodyStructureWire == nil) != (w.BodyStructure != nil) {
			t.Errorf("%d: metaWire decode: %v, wire %v, structure %v", i, err, w.BodyStructureWire != nil, w.BodyStructure != nil)
		}
	}
	if withWire < 8 {
		t.Errorf("only %d sample messages have a wire form", withWire)
	}
	// The sample with a non-ASCII Content-Description has none: UTF8=ACCEPT
	// sessions get it as UTF-8, others as an encoded word.
	nonASCII := crlf("Content-Type: text/plain\nContent-Description: caf\xc3\xa9\n\nx")
	meta, _ := Indexer(nonASCII)
	if m, _ := decodeMeta(meta, metaAll); m.BodyStructureWire != nil {
		t.Errorf("wire form for non-ASCII text: %q", m.BodyStructureWire)
	}
	// A wire form with a byte that is not printable ASCII does not decode.
	good, _ := Indexer(sampleMessages()[1])
	i := bytes.Index(good, []byte(`("TEXT"`))
	if i < 0 {
		i = bytes.Index(good, []byte(`("text"`))
	}
	if i < 0 {
		t.Fatalf("no wire form in %q", good)
	}
	bad := bytes.Clone(good)
	bad[i+1] = '\n'
	if _, err := decodeMeta(bad, metaAll); err == nil {
		t.Error("a wire form holding LF decoded")
	}
}

var uidItem = regexp.MustCompile(`^\(UID \d+ `)

// TestFetchBodyStructureWire: through a real connection, FETCH
// BODYSTRUCTURE and BODY answer the same for a message whose meta keeps
// the wire form and for the same message with a version 1 meta, in a
// session with and one without UTF8=ACCEPT, without reading the message.
func TestFetchBodyStructureWire(t *testing.T) {
	store := newFakeStore()
	samples := append(sampleMessages(), crlf("Content-Type: text/plain\nContent-Description: caf\xc3\xa9\n\nx"))
	store.mu.Lock()
	mb := store.mboxes["INBOX"]
	for _, raw := range samples {
		meta, _ := Indexer(raw)
		store.indexLocked(nil, mb, raw, meta, nil, int64(len(raw)), time.Now())
		store.indexLocked(nil, mb, raw, metaV1(t, meta), nil, int64(len(raw)), time.Now())
	}
	store.mu.Unlock()
	e := startServerWith(t, store)
	for _, utf8 := range []bool{false, true} {
		rc := e.raw()
		rc.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
		if utf8 {
			if _, st := rc.cmd("e", "ENABLE UTF8=ACCEPT"); !strings.HasPrefix(st, "e OK") {
				t.Fatal(st)
			}
		}
		rc.cmd("s", "EXAMINE INBOX")
		store.mu.Lock()
		before := store.rawCalls
		store.mu.Unlock()
		for _, item := range []string{"BODYSTRUCTURE", "BODY"} {
			rc.send("f FETCH 1:* (" + item + ")\r\n")
			var answers []string
			for {
				line, lits := rc.response()
				if strings.HasPrefix(line, "f ") {
					if !strings.HasPrefix(line, "f OK") {
						t.Fatalf("%s: %s", item, line)
					}
					break
				}
				_, rest, _ := strings.Cut(line, " FETCH ")
				rest = uidItem.ReplaceAllString(rest, "(")
				for _, l := range lits {
					rest += "\x00" + string(l)
				}
				answers = append(answers, rest)
			}
			if len(answers) != 2*len(samples) {
				t.Fatalf("%s: %d answers", item, len(answers))
			}
			for i := 0; i < len(answers); i += 2 {
				if answers[i] != answers[i+1] {
					t.Errorf("utf8 %v, %s of sample %d: %q with the wire form, %q without", utf8, item, i/2, answers[i], answers[i+1])
				}
				if !strings.HasPrefix(answers[i], "("+item+" (") {
					t.Errorf("answer %q", answers[i])
				}
			}
			if last := answers[len(answers)-1]; utf8 != strings.Contains(last, "café") {
				t.Errorf("utf8 %v: %s", utf8, last)
			}
		}
		store.mu.Lock()
		if store.rawCalls != before {
			t.Errorf("FETCH BODYSTRUCTURE read %d messages", store.rawCalls-before)
		}
		store.mu.Unlock()
	}
}
