package imapd

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// sampleMessages covers the shapes the Indexer meets.
func sampleMessages() [][]byte {
	return [][]byte{
		reportMsg,
		simpleMsg("a@x.org", "b@y.org", "plain", "Mon, 1 Jan 2024 10:00:00 +0000", "hello"),
		crlf("From: outer@example.org\nSubject: fwd\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: message/rfc822\n\nFrom: Inner <inner@example.org>\nSubject: inner\nContent-Type: multipart/alternative; boundary=c\n\n--c\n\nplain\n--c\nContent-Type: text/html\n\n<b>x</b>\n--c--\n--b--\n"),
		crlf("Subject: digest\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nfirst\n--d\n\nSubject: two\n\nsecond\n--d--\n"),
		[]byte("From: lf-only@example.org\nSubject: LF line ends\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nbody\n--z--\n"),
		[]byte(""),
		[]byte("no header at all"),
		crlf("Content-Type: multipart/mixed\n\nno boundary"),
		crlf("Content-Type: multipart/mixed; boundary=x\n\n--x--\n"),
		crlf("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbTogYUBiCgp4Cg==\n"),
		crlf("From: =?windows-1252?q?Jos=E9_=80?= <jose@example.es>\nTo: =?koi8-r?b?8NLJ18XU?= <ivan@example.ru>, broken@@, ok@example.org\nSubject: =?iso-8859-1?q?caf=E9?=\nDate: garbage\nMessage-ID: no-brackets@example.org\n\nx"),
		crlf("Subject: \xe9t\xe9 raw latin-1\nContent-Type: text/plain; charset*=utf-8''%E2%82%AC\nContent-Disposition: attachment; filename*=utf-8''na%C3%AFve.txt\nContent-Language: en, fr\nContent-Location: http://x/\nContent-Id: <id@x>\nContent-Description: a file\n\nx"),
	}
}

func TestIndexerRoundTrip(t *testing.T) {
	for i, raw := range sampleMessages() {
		meta, err := Indexer(raw)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		m, err := decodeMeta(meta, metaAll)
		if err != nil {
			t.Fatalf("%d: decode: %v", i, err)
		}
		if again := m.encode(); !bytes.Equal(again, meta) {
			t.Errorf("%d: encode(decode(meta)) differs", i)
		}
		checkStructure(t, m.BodyStructure, 0)
		if !bytes.Equal(m.Header, splitEntity(raw).header) {
			t.Errorf("%d: header block %q", i, m.Header)
		}
		// Every leaf's size is the size of the section it names.
		m.BodyStructure.Walk(func(path []int, part imap.BodyStructure) bool {
			if sp, ok := part.(*imap.BodyStructureSinglePart); ok {
				if got := len(bodySection(raw, &imap.FetchItemBodySection{Part: path})); got != int(sp.Size) {
					t.Errorf("%d: part %v: size %d, section %d bytes", i, path, sp.Size, got)
				}
			}
			return true
		})
	}
}

func checkStructure(t testing.TB, bs imap.BodyStructure, depth int) {
	t.Helper()
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(bs.Children) == 0 || bs.Extended == nil {
			t.Fatalf("multipart without children or extension data: %+v", bs)
		}
		for _, c := range bs.Children {
			checkStructure(t, c, depth+1)
		}
	case *imap.BodyStructureSinglePart:
		if bs.Extended == nil || bs.Type == "" || bs.Subtype == "" {
			t.Fatalf("single part %+v", bs)
		}
		mt := bs.MediaType()
		if strings.HasPrefix(mt, "text/") != (bs.Text != nil) {
			t.Fatalf("text part without lines, or lines on %s", mt)
		}
		if (mt == "message/rfc822" || mt == "message/global") != (bs.MessageRFC822 != nil) {
			t.Fatalf("message part without envelope, or envelope on %s", mt)
		}
		if bs.MessageRFC822 != nil {
			if bs.MessageRFC822.Envelope == nil || bs.MessageRFC822.BodyStructure == nil {
				t.Fatalf("empty message part")
			}
			checkStructure(t, bs.MessageRFC822.BodyStructure, depth+1)
		}
	default:
		t.Fatalf("body structure %T", bs)
	}
}

func TestEnvelopeLenient(t *testing.T) {
	m := computeMeta(sampleMessages()[10])
	env := m.Envelope
	if len(env.From) != 1 || env.From[0].Name != "José €" || env.From[0].Addr() != "jose@example.es" {
		t.Errorf("windows-1252 From: %+v", env.From)
	}
	// An unknown charset still keeps the addresses; a broken entry is
	// skipped, not the list.
	if len(env.To) != 2 || env.To[0].Addr() != "ivan@example.ru" || env.To[1].Addr() != "ok@example.org" {
		t.Errorf("To: %+v", env.To)
	}
	if env.Subject != "café" || !env.Date.IsZero() || env.MessageID != "no-brackets@example.org" {
		t.Errorf("envelope: %+v", env)
	}
	m = computeMeta(sampleMessages()[11])
	if m.Envelope.Subject != "été raw latin-1" {
		t.Errorf("raw 8-bit subject: %q", m.Envelope.Subject)
	}
	sp := m.BodyStructure.(*imap.BodyStructureSinglePart)
	if sp.Params["charset"] != "€" || sp.Filename() != "naïve.txt" || len(sp.Extended.Language) != 2 ||
		sp.Extended.Location != "http://x/" || sp.ID != "<id@x>" || sp.Description != "a file" {
		t.Errorf("part fields: %+v %+v", sp, sp.Extended)
	}
}

func TestSections(t *testing.T) {
	raw := sampleMessages()[2] // multipart/mixed with a message/rfc822 holding a multipart
	cases := []struct {
		sec  imap.FetchItemBodySection
		want string
	}{
		{imap.FetchItemBodySection{Part: []int{1}}, "see attached"},
		{imap.FetchItemBodySection{Part: []int{1}, Specifier: imap.PartSpecifierMIME}, "Content-Type: text/plain\r\n\r\n"},
		{imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject"}}, "Subject: inner\r\n\r\n"},
		{imap.FetchItemBodySection{Part: []int{2, 1}}, "plain"},
		{imap.FetchItemBodySection{Part: []int{2, 2}}, "<b>x</b>"},
		{imap.FetchItemBodySection{Part: []int{2, 2}, Specifier: imap.PartSpecifierMIME}, "Content-Type: text/html\r\n\r\n"},
		{imap.FetchItemBodySection{Part: []int{2, 3}}, ""},
		{imap.FetchItemBodySection{Part: []int{3}}, ""},
		{imap.FetchItemBodySection{Part: []int{1, 1}}, "see attached"},
		{imap.FetchItemBodySection{Part: []int{1, 2}}, ""},
		{imap.FetchItemBodySection{Part: []int{0}}, ""},
		{imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Content-Type", "From"}}, "Subject: fwd\r\n\r\n"},
	}
	for _, tc := range cases {
		if got := string(bodySection(raw, &tc.sec)); got != tc.want {
			t.Errorf("%v %s: %q, want %q", tc.sec.Part, tc.sec.Specifier, got, tc.want)
		}
	}
	// A digest's parts are messages by default.
	digest := sampleMessages()[3]
	if got := string(bodySection(digest, &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierText})); got != "second" {
		t.Errorf("digest 2.TEXT: %q", got)
	}
	// Part 1 of a non-multipart message is its body.
	plain := sampleMessages()[1]
	if got := string(bodySection(plain, &imap.FetchItemBodySection{Part: []int{1}})); got != "hello\r\n" {
		t.Errorf("1 of a single part: %q", got)
	}
	if got := partial([]byte("0123456789"), &imap.SectionPartial{Offset: 8, Size: 5}); string(got) != "89" {
		t.Errorf("partial: %q", got)
	}
	if got := partial([]byte("0123"), &imap.SectionPartial{Offset: 9, Size: 5}); len(got) != 0 {
		t.Errorf("partial past the end: %q", got)
	}
}

func TestBinary(t *testing.T) {
	qp := crlf("Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =\nsoft\n--q\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n--q\nContent-Transfer-Encoding: base64\n\naGVs\nbG8=\n--q--\n")
	b, ok, err := binarySection(qp, []int{1})
	if err != nil || !ok || string(b) != "café soft" {
		t.Errorf("quoted-printable: %q %v %v", b, ok, err)
	}
	if _, _, err := binarySection(qp, []int{2}); imapCode(err) != imap.ResponseCodeUnknownCTE {
		t.Errorf("unknown encoding: %v", err)
	}
	if b, _, _ := binarySection(qp, []int{3}); string(b) != "hello" {
		t.Errorf("base64: %q", b)
	}
	if _, ok, _ := binarySection(qp, []int{4}); ok {
		t.Errorf("missing part found")
	}
}

func TestSplitMultipart(t *testing.T) {
	cases := []struct {
		body string
		want []string
	}{
		{"pre\r\n--b\r\nA\r\n--b\r\nB\r\n--b--\r\nepilogue", []string{"A", "B"}},
		{"--b\nA\n--b  \nB\n--b--", []string{"A", "B"}},                           // LF, transport padding
		{"--b\r\nA\r\n--bx\r\nstill A\r\n", []string{"A\r\n--bx\r\nstill A\r\n"}}, // not a delimiter; no close
		{"--b\r\n--b--\r\n", []string{""}},
		{"no delimiter", nil},
		{"--b\r\nA\r\n--b \r \r\nB\r\n--b--", []string{"A", "B"}}, // CRs in the padding (pgpmime refuses them)
	}
	for _, tc := range cases {
		raw := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + tc.body)
		var got []string
		for _, p := range parseMIME(raw, indexLimits).Parts {
			got = append(got, string(raw[p.Start:p.End]))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q: %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestDecodeMetaDamaged(t *testing.T) {
	meta, _ := Indexer(reportMsg)
	envLen := int(meta[2]) // small enough to be one varint byte
	for n := range len(meta) {
		m, err := decodeMeta(meta[:n], metaAll)
		if n < 3+envLen+2 && err == nil {
			t.Fatalf("prefix of %d bytes decoded: %+v", n, m)
		}
	}
	for i := range meta {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(meta)
			b[i] ^= bit
			if m, err := decodeMeta(b, metaAll); err == nil {
				checkStructure(t, m.BodyStructure, 0)
			}
		}
	}
	if _, err := decodeMeta([]byte{metaVersion + 1, 0, 0, 0, 0}, metaAll); err == nil {
		t.Errorf("unknown version decoded")
	}
}

// FuzzMeta checks that any input either fails to decode or decodes to a
// structure go-imap can write, and whose encoding is stable.
func FuzzMeta(f *testing.F) {
	for _, raw := range sampleMessages() {
		meta, _ := Indexer(raw)
		f.Add(meta)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMeta(data, metaAll)
		if err != nil {
			return
		}
		checkStructure(t, m.BodyStructure, 0)
		if m.Envelope == nil {
			t.Fatal("no envelope")
		}
		enc := m.encode()
		m2, err := decodeMeta(enc, metaAll)
		if err != nil {
			t.Fatalf("re-encoded meta does not decode: %v", err)
		}
		if !bytes.Equal(m2.encode(), enc) {
			t.Fatal("encoding not stable")
		}
		// Partial decodes agree with the full one.
		if e, err := decodeMeta(data, metaEnvelope); err != nil || e.Envelope.Subject != m.Envelope.Subject {
			t.Fatalf("envelope-only decode: %v", err)
		}
	})
}

// FuzzIndexer feeds messages to the Indexer and the section extractors.
func FuzzIndexer(f *testing.F) {
	for _, raw := range sampleMessages() {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		meta, err := Indexer(raw)
		if err != nil {
			t.Fatal(err)
		}
		m, err := decodeMeta(meta, metaAll)
		if err != nil {
			t.Fatalf("Indexer output does not decode: %v", err)
		}
		checkStructure(t, m.BodyStructure, 0)
		m.BodyStructure.Walk(func(path []int, part imap.BodyStructure) bool {
			if len(path) > 4 {
				return false
			}
			sec := &imap.FetchItemBodySection{Part: path}
			body := bodySection(raw, sec)
			if sp, ok := part.(*imap.BodyStructureSinglePart); ok && len(body) != int(sp.Size) {
				t.Fatalf("part %v: size %d, section %d bytes", path, sp.Size, len(body))
			}
			for _, spec := range []imap.PartSpecifier{imap.PartSpecifierHeader, imap.PartSpecifierText, imap.PartSpecifierMIME} {
				bodySection(raw, &imap.FetchItemBodySection{Part: path, Specifier: spec, HeaderFields: []string{"subject"}})
			}
			binarySection(raw, path)
			return true
		})
		var sb bytes.Buffer
		collectText(&sb, raw, true)
	})
}

// TestHeaderFieldNames: the indexer names a field by what stands before
// the colon of its first line, blanks and 8-bit bytes included, but a
// name holding a CR is no name.
func TestHeaderFieldNames(t *testing.T) {
	h := []byte("Subject : a\r\nX Two: b\r\nSub\rject: c\r\nno colon\r\n d: e\r\n\r\n")
	var names []string
	headerFields(h, func(n, raw []byte) bool {
		names = append(names, string(n))
		return true
	})
	if want := []string{"Subject", "X Two", "", ""}; !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if got := filterHeader(h, []string{"x two", "subject"}, false); string(got) != "Subject : a\r\nX Two: b\r\n\r\n" {
		t.Errorf("HEADER.FIELDS: %q", got)
	}
}
