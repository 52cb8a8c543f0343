package httpapi_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// wantQuota checks err is the provider's 507 with CodeQuota.
func wantQuota(t *testing.T, what string, err error) {
	t.Helper()
	var ae *providerclient.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusInsufficientStorage || ae.Code != providerapi.CodeQuota || ae.Message == "" {
		t.Fatalf("%s: %v, want HTTP 507 with code %q and a message", what, err, providerapi.CodeQuota)
	}
}

func usage(t *testing.T, p *testenv.Provider, login string) storage.Usage {
	t.Helper()
	u, err := p.Store.Usage(ctx(t), login)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPushOverQuotaIsRefused: with 1,000 bytes per user, a push that
// would go past it gets 507 quota_exceeded and stores none of its
// documents (the ones that fit neither); a push that replaces a document
// by a smaller one is taken, and makes room for the refused one.
func TestPushOverQuotaIsRefused(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Quota: httpapi.Quota{Bytes: 1000}}})
	u := signup(t, p, "quinn")
	other := signup(t, p, "rita")
	ct := func(n int) []byte { return bytes.Repeat([]byte{'c'}, n) }
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: ct(600)}}); err != nil {
		t.Fatal(err)
	}
	before := usage(t, p, "quinn")
	_, err := u.c.Push(ctx(t), []providerapi.DocPush{
		{ID: "small", Rev: 1, Ciphertext: ct(10)},
		{ID: "d2", Rev: 1, Ciphertext: ct(500)},
	})
	wantQuota(t, "a push past the quota", err)
	if after := usage(t, p, "quinn"); after != before {
		t.Errorf("usage after a refused push: %+v, want %+v", after, before)
	}
	for _, id := range []string{"small", "d2"} {
		if _, err := p.Store.Doc(ctx(t), "quinn", id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("document %s of a refused push: %v, want not found", id, err)
		}
	}
	// Another user is not held by quinn's quota.
	if _, err := other.c.Push(ctx(t), []providerapi.DocPush{{ID: "d2", Rev: 1, Ciphertext: ct(900)}}); err != nil {
		t.Fatalf("another user's push: %v", err)
	}
	// Shrinking d1 is taken even with the new ciphertext counted whole
	// it would not fit (600 + 450 > 1,000); then d2 fits.
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", BaseRev: 1, Rev: 2, Ciphertext: ct(450)}}); err != nil {
		t.Fatalf("a push that shrinks a document: %v", err)
	}
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "d2", Rev: 1, Ciphertext: ct(500)}}); err != nil {
		t.Fatalf("a push that fits after making room: %v", err)
	}
	if got := usage(t, p, "quinn"); got.Docs != 2 || got.DocBytes != 950 {
		t.Errorf("usage %+v, want 2 documents of 950 bytes", got)
	}
}

// TestConflictingEntriesDoNotDiscountAPush: entries that will conflict
// (a wrong base revision of a large stored document) write nothing, so
// they must not count as making room for the others (the attack: one
// 800-byte document, then pushes of new documents padded with such
// entries, each taken, past the quota).
func TestConflictingEntriesDoNotDiscountAPush(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Quota: httpapi.Quota{Bytes: 1000}}})
	u := signup(t, p, "quinn")
	ct := func(n int) []byte { return bytes.Repeat([]byte{'c'}, n) }
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "big", Rev: 1, Ciphertext: ct(800)}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_, err := u.c.Push(ctx(t), []providerapi.DocPush{
			{ID: fmt.Sprintf("new%d", i), Rev: 1, Ciphertext: ct(600)},
			{ID: "big", BaseRev: 7, Rev: 8, Ciphertext: ct(1)},
			{ID: "big", BaseRev: 8, Rev: 9, Ciphertext: ct(1)},
		})
		wantQuota(t, "a push padded with conflicting entries", err)
	}
	if got := usage(t, p, "quinn"); got.DocBytes != 800 {
		t.Fatalf("usage %+v after padded pushes, want the 800 bytes of before", got)
	}
	// The same id twice, both taken: the second replaces the first.
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{
		{ID: "big", BaseRev: 1, Rev: 2, Ciphertext: ct(100)},
		{ID: "big", BaseRev: 2, Rev: 3, Ciphertext: ct(50)},
		{ID: "more", Rev: 1, Ciphertext: ct(900)},
	}); err != nil {
		t.Fatalf("a push that fits once played through: %v", err)
	}
}

// TestBlobOverQuotaIsRefused: a blob upload past the quota gets 507
// before its body is stored; the same blob again (already stored, adds
// nothing) is taken.
func TestBlobOverQuotaIsRefused(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Quota: httpapi.Quota{Bytes: 1 << 20, BlobBytes: 1000}}})
	u := signup(t, p, "quinn")
	first := bytes.Repeat([]byte{'a'}, 800)
	if err := u.c.PutBlob(ctx(t), blobID(first), first); err != nil {
		t.Fatal(err)
	}
	second := bytes.Repeat([]byte{'b'}, 300)
	wantQuota(t, "a blob past the quota", u.c.PutBlob(ctx(t), blobID(second), second))
	if _, _, err := p.Store.Blob(ctx(t), "quinn", blobID(second)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refused blob: %v, want not found", err)
	}
	if err := u.c.PutBlob(ctx(t), blobID(first), first); err != nil {
		t.Errorf("the stored blob again: %v", err)
	}
	if got := usage(t, p, "quinn"); got.Blobs != 1 || got.BlobBytes != 800 {
		t.Errorf("usage %+v, want one blob of 800 bytes", got)
	}
	// Documents are not held by the blob limit.
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: bytes.Repeat([]byte{'c'}, 5000)}}); err != nil {
		t.Errorf("a document under the total: %v", err)
	}
}

// TestHugePushAndFeedFromTheEnd: a push of 100,000 documents in one
// request gets a clear 400 (at most 5,000 a push) and stores nothing;
// the changes feed asked from 2^63 answers with no documents and the
// user's real sequence.
func TestHugePushAndFeedFromTheEnd(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	u := signup(t, p, "quinn")
	var b strings.Builder
	b.WriteString(`{"docs":[`)
	for i := range 100_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"d%d","rev":1,"ciphertext":"AQ=="}`, i)
	}
	b.WriteString(`]}`)
	st, body := r.do(http.MethodPost, "/1/docs", bearer(u.token), []byte(b.String()))
	wantErr(t, "a push of 100,000 documents", st, body, http.StatusBadRequest, providerapi.CodeBadRequest)
	if !bytes.Contains(body, []byte("5000")) {
		t.Errorf("the answer does not say the limit: %s", body)
	}
	if got := usage(t, p, "quinn"); got != (storage.Usage{}) {
		t.Errorf("usage after the refused push: %+v", got)
	}

	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	ch, err := u.c.Changes(ctx(t), 1<<63, 10, 0)
	if err != nil {
		t.Fatalf("changes since 2^63: %v", err)
	}
	if len(ch.Changes) != 0 || ch.More || ch.LastSeq != 1 || ch.Head != 1 {
		t.Errorf("changes since 2^63: %d documents, more %v, last_seq %d, head %d; want none, the real sequence 1", len(ch.Changes), ch.More, ch.LastSeq, ch.Head)
	}
	st, body = r.do(http.MethodGet, "/1/docs/changes?since=18446744073709551616", bearer(u.token), nil)
	wantErr(t, "changes since 2^64", st, body, http.StatusBadRequest, providerapi.CodeBadRequest)
}

// TestQueuedMailDoesNotBlockItsOwnSync: mail from strangers that fills
// the account's queue must not make the push that turns it into
// documents and blobs (the device's sync, which then empties the queue)
// fail with 507, or the account would stay full for good.
func TestQueuedMailDoesNotBlockItsOwnSync(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Quota: httpapi.Quota{Bytes: 1000}}})
	u := signup(t, p, "quinn")
	if _, _, err := p.Store.PutIncoming(ctx(t), "quinn", bytes.Repeat([]byte{'m'}, 900)); err != nil {
		t.Fatal(err)
	}
	if room, err := p.IncomingRoom(ctx(t), "quinn"); err != nil || room > 100 {
		t.Fatalf("incoming room %d, %v, want at most 100 with 900 queued", room, err)
	}
	blob := bytes.Repeat([]byte{'b'}, 800)
	if err := u.c.PutBlob(ctx(t), blobID(blob), blob); err != nil {
		t.Fatalf("the blob of a queued message: %v", err)
	}
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "msg", Rev: 1, Ciphertext: bytes.Repeat([]byte{'d'}, 150)}}); err != nil {
		t.Fatalf("the document of a queued message: %v", err)
	}
}
