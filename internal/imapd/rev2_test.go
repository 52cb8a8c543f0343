package imapd

import (
	"strings"
	"testing"
)

// TestNoRecentInIMAP4rev2: RFC 9051 removed \Recent and RECENT (appendix
// E). A session that enabled IMAP4rev2 gets neither: not on SELECT, not
// in FETCH FLAGS of messages it would hold as \Recent (those there at its
// SELECT and one that arrives while it is selected), not in the FETCH a
// STORE answers, not in the updates IDLE and NOOP bring. An IMAP4rev1
// session beside it still does (TestRecent).
func TestNoRecentInIMAP4rev2(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	store.deliver("INBOX", reportMsg)
	e := startServerWith(t, store)

	a := e.rawLogin()
	a.ok("e", "ENABLE IMAP4rev2")
	var got []string
	check := func(what string, lines []string) {
		t.Helper()
		got = append(got, lines...)
		for _, l := range lines {
			if strings.Contains(strings.ToUpper(l), "RECENT") {
				t.Errorf("%s: %q", what, l)
			}
		}
	}
	check("SELECT", a.ok("s", "SELECT INBOX"))
	check("FETCH FLAGS", a.ok("f", "FETCH 1:* (FLAGS)"))
	check("STORE", a.ok("st", `STORE 1 +FLAGS (\Flagged)`))
	store.deliver("INBOX", reportMsg)
	check("IDLE", a.idleUntil("* 3 EXISTS"))
	check("NOOP", a.ok("n", "NOOP"))
	check("FETCH FLAGS of the new message", a.ok("f2", "UID FETCH 1:* (FLAGS)"))
	store.setFlags("INBOX", 3, `\Answered`)
	check("FLAGS changed elsewhere", a.ok("n2", "NOOP"))
	if !has(got, `FLAGS (\Answered)`) || !has(got, `\Flagged`) {
		t.Errorf("the FETCHes are not all there: %q", got)
	}
}

// TestIMAP4rev2LeavesRecentToRev1: an IMAP4rev2 session does not claim
// \Recent it cannot show (RFC 9051 has none): the messages there when it
// selected, and one that arrives while it is selected, are still \Recent
// to the IMAP4rev1 session that selects the mailbox next, and to one
// selected beside it when a message arrives.
func TestIMAP4rev2LeavesRecentToRev1(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	store.deliver("INBOX", reportMsg)
	e := startServerWith(t, store)

	a := e.rawLogin()
	a.ok("e", "ENABLE IMAP4rev2")
	a.ok("s", "SELECT INBOX")
	store.deliver("INBOX", reportMsg)
	a.idleUntil("* 3 EXISTS")

	b := e.rawLogin()
	if sel := b.ok("s", "SELECT INBOX"); !has(sel, "* 3 RECENT") {
		t.Errorf("the IMAP4rev1 session's SELECT after the IMAP4rev2 one: %q, want 3 RECENT", sel)
	}
	store.deliver("INBOX", reportMsg)
	b.idleUntil("* 4 EXISTS")
	if got := b.ok("f", "FETCH 4 (FLAGS)"); !has(got, `\Recent`) {
		t.Errorf("FETCH FLAGS of the new message in the IMAP4rev1 session: %q", got)
	}
}
