package daemon_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/fulltext"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestFullTextIndexFollowsSync: the value the IMAP server gets for an
// account answers SEARCH BODY from the index, for a message appended on
// this device and for one synced in from another, and after a restart
// the index covers them without indexing them again.
func TestFullTextIndexFollowsSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := testenv.StartProvider(t, testenv.Options{})
	dir := t.TempDir()
	da := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	db := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "uma@" + testenv.Domain
	A := testenv.NewUser(t, da, p, addr)
	B, err := db.Login(ctx, addr, []byte(testenv.Password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	first := A.IMAPMail()
	var s fulltext.Searcher = first
	if again := A.IMAPMail(); again != first {
		t.Fatal("IMAPMail is not one value for the account")
	}

	here, _, err := A.Mail.Append(ctx, "INBOX", []byte("Subject: here\r\n\r\nA note about pomegranates.\r\n"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	there, _, err := B.Mail.Append(ctx, "INBOX", []byte("Subject: there\r\n\r\nWritten on the other device: pomelo.\r\n"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := B.Mail.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// A may have pulled the document before its content was up (the
	// notification of the push comes first), and the mail store tries
	// again at the next pull that brings a change: make one.
	if err := B.Mail.CreateMailbox(ctx, "Nudge"); err != nil {
		t.Fatal(err)
	}
	if err := B.Mail.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := A.Mail.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := A.Index.WaitFor(ctx, func() bool { return A.Index.Indexed(here.ID) && A.Index.Indexed(there.ID) }); err != nil {
		t.Fatal(err)
	}
	info, err := A.Mail.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	uidOf := func(id string) uint32 {
		msgs, _ := A.Mail.Messages("INBOX")
		for _, m := range msgs {
			if m.ID == id {
				return m.UID
			}
		}
		t.Fatalf("message %s not in INBOX", id)
		return 0
	}
	for q, id := range map[string]string{"pomegranate": here.ID, "pomelo": there.ID} {
		hits, indexed, ok, err := s.Search(ctx, "INBOX", info.UIDValidity, q, false)
		if err != nil || !ok || !slices.Equal(hits, []uint32{uidOf(id)}) || !indexed(uidOf(id)) {
			t.Fatalf("%q: %v %v %v", q, hits, ok, err)
		}
	}

	if err := da.Close(); err != nil {
		t.Fatal(err)
	}
	_, A2 := testenv.LoginAgain(t, p, dir, addr)
	// Indexed at open: read from the segments written at the close.
	if !A2.Index.Indexed(here.ID) || !A2.Index.Indexed(there.ID) {
		t.Fatal("after a restart the index starts again")
	}
	hits, _, ok, err := A2.IMAPMail().Search(ctx, "INBOX", info.UIDValidity, "pome", false)
	if err != nil || !ok || len(hits) != 2 {
		t.Fatalf("after a restart: %v %v %v", hits, ok, err)
	}
}
