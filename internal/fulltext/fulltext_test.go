package fulltext

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/mailtext"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// account is a mail store on a local document engine with its index.
type account struct {
	path string
	k    *seal.Keys
	st   *localstore.Store
	ms   *mailstore.Store
	ix   *Index
	cfg  Config
}

func openAccount(t testing.TB, path string, k *seal.Keys, cfg Config) *account {
	t.Helper()
	st, err := localstore.Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mailstore.Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Open(ms, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &account{path: path, k: k, st: st, ms: ms, ix: ix, cfg: cfg}
	t.Cleanup(a.close)
	return a
}

func (a *account) close() {
	if a.ix != nil {
		a.ix.Close()
		a.ms.Close()
		a.st.Close()
		a.ix = nil
	}
}

func (a *account) reopen(t testing.TB) *account {
	a.close()
	return openAccount(t, a.path, a.k, a.cfg)
}

// waitCovered waits until every message of the account is indexed.
func (a *account) waitCovered(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := a.ix.WaitFor(ctx, func() bool {
		for _, mb := range a.ms.Mailboxes() {
			msgs, _ := a.ms.Messages(mb.Name)
			for _, m := range msgs {
				if !a.ix.Indexed(m.ID) {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// scan is what the IMAP server's scan answers.
func scan(t testing.TB, ms *mailstore.Store, mbox, query string, all bool) []uint32 {
	t.Helper()
	msgs, err := ms.Messages(mbox)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	var buf bytes.Buffer
	for _, m := range msgs {
		raw, err := ms.Raw(context.Background(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(mailtext.Text(&buf, raw, all), []byte(query)) {
			out = append(out, m.UID)
		}
	}
	return out
}

// search is what the IMAP server answers with the index: its hits, and
// the scan of the messages it does not cover. covered counts those it
// did.
func search(t testing.TB, a *account, mbox, query string, all bool) (uids []uint32, covered int, ok bool) {
	t.Helper()
	info, err := a.ms.Mailbox(mbox)
	if err != nil {
		t.Fatal(err)
	}
	hits, indexed, ok, err := a.ix.Search(context.Background(), mbox, info.UIDValidity, query, all)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return scan(t, a.ms, mbox, query, all), 0, false
	}
	out := slices.Clone(hits)
	msgs, _ := a.ms.Messages(mbox)
	var buf bytes.Buffer
	for _, m := range msgs {
		if indexed(m.UID) {
			covered++
			continue
		}
		raw, _ := a.ms.Raw(context.Background(), m.ID)
		if bytes.Contains(mailtext.Text(&buf, raw, all), []byte(query)) {
			out = append(out, m.UID)
		}
	}
	slices.Sort(out)
	return out, covered, true
}

var corpus = []string{
	"From: Alice <alice@example.org>\r\nSubject: Hello World\r\n\r\nHello world, this is a plain message.\r\nSee you at 10:30 tomorrow.\r\n",
	"From: bob@example.org\r\nSubject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?=\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThe quarterly rep=\r\nort is ready: na=C3=AFve numbers.\r\n--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+UXVhcnRlcmx5PC9iPiByZXBvcnQ6IDxpPmJ1ZGdldDwvaT4gZS1tYWlsIHVz\r\n--XX--\r\n",
	"From: carol@example.org\r\nSubject: latin\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9 cr\xe8me br\xfbl\xe9e, Stra\xdfe \xc0 BIENT\xd4T\r\n",
	"From: dave@example.org\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nForwarding the message below.\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: erin@example.org\r\nSubject: Inner secret plans\r\n\r\nThe attached message body mentions zanzibar and e-mail.\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nemFuemliYXJiaW5hcnk=\r\n--b1--\r\n",
	"From: frank@example.org\r\nSubject: cp1252\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n\x93Quoted\x94 \x80100 price \x96 dash\r\n",
	"From: grace@example.org\r\nSubject: numbers and dots\r\n\r\nVersion 2.10.3 released on 2024-01-02; see x@y.example or foo_bar.\r\nKelvin: \xe2\x84\xaaelvin, \xc3\x9cber \xce\x91\xce\x92\xce\x93 \xef\xbf\xbd end\r\n",
	"Subject: no body at all\r\n\r\n",
	"no header, just text hello\r\n",
	"From: heidi@example.org\r\nSubject: \xff\xfe raw 8-bit subject\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ninvalid utf8 \xff\xfe here, hello\r\n",
	"From: ivan@example.org\r\nSubject: Re: Hello World\r\nContent-Type: text/plain; charset=unknown-8bit\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nhello worlds apart\r\n",
}

var queries = []string{
	"hello", "world", "hello world", "ello wor", "hello world,", "o", "", " ", "-", ", ", "\r\n",
	"café", "crème", "café crème", "naïve", "straße", "bientôt", "brûlée", "report", "quarterly report",
	"zanzibar", "e-mail", "inner secret", "secret", "plans", "forwarding", "zanzibarbinary",
	"“quoted”", "€100", "–", "2.10", "2024-01-02", "x@y.example", "foo_bar", "kelvin", "über", "αβγ", "\ufffd",
	"subject", "alice", "example.org", "<b>quarterly</b>", "budget", "re: hello", "worlds apart",
	"tomorrow", "10:30", "ÿþ", "here, hello", "nothing-matches-this", "zzzz",
}

// checkAll compares the index's answers with the scan's for every query,
// as BODY and as TEXT, in every mailbox. With full, the index must cover
// every message (ok for the queries it answers).
func checkAll(t *testing.T, a *account, full bool) {
	t.Helper()
	for _, mb := range a.ms.Mailboxes() {
		n := mb.Messages
		for _, q := range queries {
			q = strings.ToLower(q)
			for _, all := range []bool{false, true} {
				want := scan(t, a.ms, mb.Name, q, all)
				got, covered, ok := search(t, a, mb.Name, q, all)
				if !slices.Equal(got, want) {
					t.Errorf("%s %q all=%v: index %v, scan %v", mb.Name, q, all, got, want)
				}
				if full && ok && covered != int(n) {
					t.Errorf("%s %q: the index covers %d of %d messages", mb.Name, q, covered, n)
				}
			}
		}
	}
}

func appendCorpus(t *testing.T, ms *mailstore.Store, mbox string) []mailstore.Message {
	t.Helper()
	var out []mailstore.Message
	for _, raw := range corpus {
		m, _, err := ms.Append(context.Background(), mbox, []byte(raw), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestSameAsScan: the index answers what the scan answers, for queries
// with and without separators, while it is in memory, after it is
// written and merged, after appends, expunges, copies and moves, after a
// restart and for messages written while it was not running.
func TestSameAsScan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	k := sealtest.Keys(t)
	a := openAccount(t, path, k, Config{FlushDocs: 4})
	msgs := appendCorpus(t, a.ms, "INBOX")
	a.waitCovered(t)
	checkAll(t, a, true)

	// A second round: segments flushed at four messages merge.
	msgs = append(msgs, appendCorpus(t, a.ms, "INBOX")...)
	a.waitCovered(t)
	checkAll(t, a, true)

	// Expunge some; copy and move others.
	ctx := context.Background()
	gone := []uint32{msgs[0].UID, msgs[3].UID, msgs[12].UID}
	if _, err := a.ms.StoreFlags(ctx, "INBOX", gone, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ms.Expunge(ctx, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.ms.Copy(ctx, "INBOX", []uint32{msgs[1].UID, msgs[5].UID}, "Archive"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.ms.Move(ctx, "INBOX", []uint32{msgs[2].UID, msgs[13].UID}, "Trash"); err != nil {
		t.Fatal(err)
	}
	a.waitCovered(t)
	checkAll(t, a, true)

	// Rename a mailbox: its messages keep their ids, and stay covered.
	if err := a.ms.RenameMailbox(ctx, "Archive", "Old"); err != nil {
		t.Fatal(err)
	}
	checkAll(t, a, true)

	// A restart finds everything indexed, before the worker does anything.
	a = a.reopen(t)
	a.ix.mu.RLock()
	segs, inMem := len(a.ix.segs), len(a.ix.mem.docs)
	a.ix.mu.RUnlock()
	if segs == 0 || inMem != 0 {
		t.Fatalf("after a restart: %d segments, %d messages in memory", segs, inMem)
	}
	for _, mb := range a.ms.Mailboxes() {
		ms, _ := a.ms.Messages(mb.Name)
		for _, m := range ms {
			if !a.ix.Indexed(m.ID) {
				t.Fatalf("%s %d not indexed after a restart", mb.Name, m.UID)
			}
		}
	}
	checkAll(t, a, true)

	// Messages written while the index was not running, as sync writes
	// them (documents the mail store applies when it opens).
	a.close()
	st, err := localstore.Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	docs := docsync.New(st, nil, k, "u@example.test", nil)
	ms, err := mailstore.Open(docs, st, k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms.Close() // the store as it was; the documents below come "from sync"
	raw := []byte("From: sync@example.org\r\nSubject: synced in\r\n\r\nA message from another device: kumquat.\r\n")
	writeSyncedMessage(t, docs, raw)
	st.Close()
	a = openAccount(t, path, k, Config{FlushDocs: 4})
	a.waitCovered(t)
	if got, _, _ := search(t, a, "INBOX", "kumquat", false); len(got) != 1 {
		t.Fatalf("the synced message: %v", got)
	}
	checkAll(t, a, true)
}

// TestNotCoveredIsScanned: what the index does not cover yet is reported
// so, and the answer with the scan of the rest is the scan's.
func TestNotCoveredIsScanned(t *testing.T) {
	st, k := openTestStore(t)
	ms, err := mailstore.Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	appendCorpus(t, ms, "INBOX")
	// An index that never runs its worker: nothing is covered.
	ix := &Index{src: ms, st: st, mem: newMem(), ids: map[string]uint32{}}
	info, _ := ms.Mailbox("INBOX")
	hits, indexed, ok, err := ix.Search(context.Background(), "INBOX", info.UIDValidity, "hello", false)
	if err != nil || !ok || len(hits) != 0 || indexed(1) {
		t.Fatalf("empty index: %v %v %v", hits, ok, err)
	}
	if _, _, ok, _ := ix.Search(context.Background(), "INBOX", info.UIDValidity+1, "hello", false); ok {
		t.Fatal("answered for another UIDVALIDITY")
	}
	if _, _, ok, _ := ix.Search(context.Background(), "INBOX", info.UIDValidity, "\xff", false); ok {
		t.Fatal("answered for a query that is not UTF-8")
	}
}

func openTestStore(t *testing.T) (*localstore.Store, *seal.Keys) {
	k := sealtest.Keys(t)
	st, err := localstore.Open(filepath.Join(t.TempDir(), "store.db"), k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, k
}

// TestNoPlaintextOnDisk: the store file holds no token of the indexed
// text, nor a message's id, in the clear.
func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	a := openAccount(t, path, sealtest.Keys(t), Config{FlushDocs: 2})
	words := []string{"xylophonequartz", "zanzibar", "kumquatory"}
	var ids []string
	for _, w := range words {
		m, _, err := a.ms.Append(context.Background(), "INBOX", []byte("Subject: s\r\n\r\nThe word is "+w+".\r\n"), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	a.waitCovered(t)
	a.close()
	var all []byte
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			all = append(all, b...)
		}
		return nil
	})
	if len(all) == 0 {
		t.Fatal("nothing on disk")
	}
	for _, w := range append(words, ids...) {
		if bytes.Contains(all, []byte(w)) {
			t.Errorf("%q is on disk in the clear", w)
		}
	}
}

// writeSyncedMessage writes a message document and its blob as sync
// does, for the mail store to apply.
func writeSyncedMessage(t *testing.T, docs *docsync.Engine, raw []byte) {
	t.Helper()
	id, err := seal.RandomDocID()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"type": "message", "mbox": "INBOX", "blob": docs.BlobID(raw),
		"size": len(raw), "date": time.Now().UTC().Truncate(time.Second), "flags": []string{},
	})
	if err := docs.PutBlobsAndDocs([][]byte{raw}, []docsync.Doc{{ID: id, Body: body}}); err != nil {
		t.Fatal(err)
	}
}

// TestUnreadableIndexStartsAgain: a list of segments that does not decode
// (or a segment that does not) is no reason to refuse the account: the
// index starts again and answers as the scan does.
func TestUnreadableIndexStartsAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	k := sealtest.Keys(t)
	a := openAccount(t, path, k, Config{FlushDocs: 3})
	appendCorpus(t, a.ms, "INBOX")
	a.waitCovered(t)
	a.close()
	for _, damage := range []func(tx *localstore.Tx) error{
		func(tx *localstore.Tx) error {
			v, err := tx.Get(bucketMeta, keyState)
			if err != nil {
				return err
			}
			_, _, refs, err := decodeState(v)
			if err != nil || len(refs) == 0 {
				t.Fatalf("the list of segments: %v %v", refs, err)
			}
			return tx.DeleteBucket(segBucket(refs[0].id))
		},
		func(tx *localstore.Tx) error { return tx.Put(bucketMeta, keyState, []byte("FTM1\xff")) },
	} {
		st, err := localstore.Open(path, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Update(damage); err != nil {
			t.Fatal(err)
		}
		st.Close()
		a = openAccount(t, path, k, Config{FlushDocs: 3})
		a.waitCovered(t)
		checkAll(t, a, true)
		a.close()
	}
}

// TestSearchWhileIndexing: searches running while messages come in,
// segments are written and merge, never fail, and every answer they give
// together with the scan of what they do not cover is the scan's for the
// messages they were asked about.
func TestSearchWhileIndexing(t *testing.T) {
	a := openAccount(t, filepath.Join(t.TempDir(), "store.db"), sealtest.Keys(t), Config{FlushDocs: 2})
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		info, _ := a.ms.Mailbox("INBOX")
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, q := range []string{"hello", "hello world", "zanzibar"} {
				if _, _, _, err := a.ix.Search(context.Background(), "INBOX", info.UIDValidity, q, true); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	for range 3 {
		appendCorpus(t, a.ms, "INBOX")
	}
	a.waitCovered(t)
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkAll(t, a, true)
}
