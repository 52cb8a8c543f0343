package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bitmask-go/bitmask/internal/testenv/dovecot"
)

// TestDovecotReadsLayout writes a tree with this package (odd folder
// names, every flag letter, keywords, a subscriptions file) and has the
// installed Dovecot serve it: it must see the mailboxes by their names,
// the subscriptions, each message's flags and keywords and its mtime as
// INTERNALDATE. Without Dovecot it skips, or fails with
// BITMASK_REQUIRE_PEERS=1.
func TestDovecotReadsLayout(t *testing.T) {
	if _, err := dovecot.Binary(); err != nil {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatalf("%v (apt-get install dovecot-imapd) and BITMASK_REQUIRE_PEERS=1", err)
		}
		t.Skip(err)
	}
	root := t.TempDir()
	mailboxes := []string{"INBOX", "Sent", "Sent/2024", "a.b", "Entwürfe", "R&D", `back\slash`, "~home", "日本語/メール", "INBOX/child"}
	when := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	flags := []string{`\Answered`, `\Flagged`, `\Seen`, `\Draft`, `\Deleted`, "$Forwarded", "Junk", "$label1"}
	var subs []byte
	for i, mb := range mailboxes {
		folder, err := MailboxToFolder(mb)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, folder)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		k := &Keywords{}
		info, dropped := Info(flags[:i%len(flags)+1], k)
		if len(dropped) > 0 {
			t.Fatalf("dropped %q", dropped)
		}
		if err := os.WriteFile(filepath.Join(dir, KeywordsFile), k.Marshal(), 0o600); err != nil {
			t.Fatal(err)
		}
		raw := fmt.Appendf(nil, "Subject: in %s\r\n\r\nbody\r\n", mb)
		name := Name{Base: UniqueBase(when, "test"), Size: int64(len(raw)), Info: info, HasInfo: true}
		p := filepath.Join(dir, "cur", name.String())
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if folder == "" {
				subs = append(subs, "INBOX\n"...)
			} else {
				subs = append(subs, folder[1:]+"\n"...)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "subscriptions"), subs, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := dovecot.ServeMaildir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(s.Log(20))
		}
		s.Close()
	}()
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(dovecot.User, dovecot.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range list {
		if !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) && !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) {
			got = append(got, l.Mailbox)
		}
	}
	want := slices.Clone(mailboxes)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("Dovecot lists %q, want %q", got, want)
	}
	sl, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var gotSubs, wantSubs []string
	for _, l := range sl {
		gotSubs = append(gotSubs, l.Mailbox)
	}
	for i, mb := range mailboxes {
		if i%2 == 0 {
			wantSubs = append(wantSubs, mb)
		}
	}
	sort.Strings(gotSubs)
	sort.Strings(wantSubs)
	if !slices.Equal(gotSubs, wantSubs) {
		t.Errorf("Dovecot's subscriptions %q, want %q", gotSubs, wantSubs)
	}
	for i, mb := range mailboxes {
		if _, err := c.Select(mb, nil).Wait(); err != nil {
			t.Errorf("SELECT %q: %v", mb, err)
			continue
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Errorf("FETCH in %q: %v, %d messages", mb, err, len(msgs))
			continue
		}
		var gotFlags []string
		for _, f := range msgs[0].Flags {
			if f != `\Recent` {
				gotFlags = append(gotFlags, string(f))
			}
		}
		wantFlags := slices.Clone(flags[:i%len(flags)+1])
		sort.Strings(gotFlags)
		sort.Strings(wantFlags)
		if !slices.Equal(gotFlags, wantFlags) {
			t.Errorf("%q: Dovecot's flags %q, want %q", mb, gotFlags, wantFlags)
		}
		if !msgs[0].InternalDate.Equal(when) {
			t.Errorf("%q: INTERNALDATE %v, want %v", mb, msgs[0].InternalDate, when)
		}
	}
}
