package e2e

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestMailboxAttributesSurviveRestart: after bitmaskd restarts on the same
// data directory, LIST RETURN (SPECIAL-USE) still marks Sent, Drafts,
// Trash, Junk and Archive, and LIST (SUBSCRIBED) still lists what the
// user subscribed to and not what they unsubscribed from (RFC 6154,
// RFC 5258).
// Before, both were lost at every restart, and clients made their own
// "Sent Messages" folders.
func TestMailboxAttributesSurviveRestart(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	first := signup(t, p, "rita")
	c := first.imap(t, nil)
	if err := c.Create("Projects", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("Junk").Wait(); err != nil {
		t.Fatal(err)
	}
	before := mailboxAttributes(t, c)
	c.Close()
	first.Stop()
	if err := first.Daemon.Close(); err != nil {
		t.Fatal(err)
	}

	r := testenv.StartDaemon(t, testenv.DaemonOptions{Dir: first.Dir})
	a, err := r.Login(ctx(t), first.acct.Address, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	again := &device{r, a}
	after := mailboxAttributes(t, again.imap(t, nil))
	for name, want := range map[string]imap.MailboxAttr{
		"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts, "Trash": imap.MailboxAttrTrash,
		"Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive,
	} {
		if !slices.Contains(before[name], want) {
			t.Errorf("before the restart, %s lacks %s: %v", name, want, before[name])
		}
		if !slices.Contains(after[name], want) {
			t.Errorf("after the restart, %s lacks %s: %v", name, want, after[name])
		}
	}
	for _, name := range []string{"INBOX", "Sent", "Projects"} {
		if !slices.Contains(after[name], lsubbed) {
			t.Errorf("after the restart, LIST (SUBSCRIBED) does not list %s", name)
		}
	}
	if slices.Contains(after["Junk"], lsubbed) {
		t.Errorf("after the restart, LIST (SUBSCRIBED) lists the unsubscribed Junk")
	}
}

// lsubbed marks, in mailboxAttributes' answer, a mailbox that
// LIST (SUBSCRIBED) named.
const lsubbed imap.MailboxAttr = "(subscribed)"

// mailboxAttributes asks LIST "" * RETURN (SPECIAL-USE) and
// LIST (SUBSCRIBED) "" *, and gives each mailbox its attributes, plus
// lsubbed when the second names it.
func mailboxAttributes(t *testing.T, c *imapclient.Client) map[string][]imap.MailboxAttr {
	t.Helper()
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]imap.MailboxAttr{}
	for _, m := range list {
		out[m.Mailbox] = append(out[m.Mailbox], m.Attrs...)
	}
	subs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range subs {
		out[m.Mailbox] = append(out[m.Mailbox], lsubbed)
	}
	return out
}
