package daemon_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestWritesOfAnotherProgramRebuildIndexes: a store written after a clean
// close by a program that does not keep bitmaskd's indexes (an older
// bitmaskd after a downgrade) is noticed at the next open, and the
// indexes are rebuilt: the pending change is pushed, the key document is
// found by type, and the message document is in INBOX.
func TestWritesOfAnotherProgramRebuildIndexes(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	dir := t.TempDir()
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	addr := "rae@" + testenv.Domain
	A := testenv.NewUser(t, d, p, addr)
	raw := []byte("From: a@example.org\r\nSubject: written by another program\r\n\r\nhello\r\n")
	blob, err := A.Docs.PutBlob(raw)
	if err != nil {
		t.Fatal(err)
	}
	path, keys := A.StorePath(), A.Keys()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The other program: documents written as records, no index kept.
	st, err := localstore.Open(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	record := func(body any) []byte {
		b, _ := json.Marshal(body)
		r, _ := json.Marshal(map[string]any{"r": 0, "b": b, "x": true, "v": 1})
		return r
	}
	err = st.Update(func(tx *localstore.Tx) error {
		if err := tx.Put("docs", "otherprogrammessage", record(map[string]any{
			"type": "message", "mbox": "INBOX", "blob": blob, "size": len(raw),
			"date": time.Now().UTC().Truncate(time.Second), "flags": []string{},
		})); err != nil {
			return err
		}
		return tx.Put("docs", "otherprogramkey", record(contactkeys.Key{
			Type: contactkeys.DocType, Address: "someone@example.org", Fingerprint: "00", Level: contactkeys.WeakChain,
		}))
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	d2, A2 := testenv.LoginAgain(t, p, dir, addr)
	msgs, _ := A2.Mail.Messages("INBOX")
	found := false
	for _, m := range msgs {
		found = found || m.ID == "otherprogrammessage"
	}
	if !found {
		t.Fatalf("the other program's message is not in INBOX: %+v", msgs)
	}
	ks, err := contactkeys.New(A2.Docs, A2.Keys()).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].Address != "someone@example.org" {
		t.Fatalf("keys by type: %+v", ks)
	}
	if err := A2.Docs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := A2.Docs.Status().Pending; n != 0 {
		t.Fatalf("%d changes not pushed", n)
	}
	// And a clean close is taken as clean: nothing is rebuilt next time.
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = localstore.Open(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if clean, err := st.TakeCleanMark(); err != nil || !clean {
		t.Fatalf("after a clean close: clean=%v %v", clean, err)
	}
}
