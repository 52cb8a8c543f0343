package imapd

import (
	"slices"
	"strings"
	"testing"
)

// Subscriptions live apart from the mailboxes in the real store (RFC
// 3501 §6.3.6): a subscribed mailbox that is deleted stays subscribed,
// and LIST (SUBSCRIBED) shows it \NonExistent (RFC 5258 §3.4), LSUB
// \Noselect; SUBSCRIBE of a name that does not exist is allowed; RENAME
// moves the subscriptions of the mailbox and its children.
func TestSubscriptionsOfNamesThatDoNotExist(t *testing.T) {
	e := startServerWithStore(t, realStore(t))
	rc := e.raw()
	ok := func(tag, cmd string) []string {
		t.Helper()
		untagged, st := rc.cmd(tag, cmd)
		if !strings.HasPrefix(st, tag+" OK") {
			t.Fatalf("%s: %q", cmd, st)
		}
		return untagged
	}
	has := func(what string, lines []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("%s: no %q in %q", what, w, lines)
			}
		}
	}
	hasNot := func(what string, lines []string, name string) {
		t.Helper()
		for _, l := range lines {
			if strings.HasSuffix(l, `"/" `+name) || strings.HasSuffix(l, `"/" "`+name+`"`) {
				t.Errorf("%s: %q listed: %q", what, name, l)
			}
		}
	}
	ok("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	ok("c1", "CREATE Gone")
	ok("c2", "CREATE Work/2026")
	ok("s1", `SUBSCRIBE "Not yet"`)
	ok("d", "DELETE Gone")

	list := ok("l1", `LIST (SUBSCRIBED) "" "*"`)
	has("LIST (SUBSCRIBED)", list,
		`* LIST (\NonExistent \Subscribed) "/" "Gone"`,
		`* LIST (\NonExistent \Subscribed) "/" "Not yet"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "Work/2026"`,
		`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`)
	lsub := ok("l2", `LSUB "" "*"`)
	has("LSUB", lsub,
		`* LSUB (\Noselect) "/" "Gone"`,
		`* LSUB (\Noselect) "/" "Not yet"`,
		`* LSUB () "/" "Work/2026"`)
	// LIST without SUBSCRIBED lists what exists only.
	all := ok("l3", `LIST "" "*"`)
	hasNot("LIST", all, "Gone")
	hasNot("LIST", all, "Not yet")

	// A mailbox made under a subscribed name is subscribed.
	ok("c3", "CREATE Gone")
	has("LIST (SUBSCRIBED) after CREATE", ok("l4", `LIST (SUBSCRIBED) "" "Gone"`), `* LIST (\HasNoChildren \Subscribed) "/" "Gone"`)

	// RENAME moves the subscriptions, of the children too.
	ok("u", "UNSUBSCRIBE Work")
	ok("r", "RENAME Work Job")
	list = ok("l5", `LIST (SUBSCRIBED) "" "*"`)
	has("LIST (SUBSCRIBED) after RENAME", list, `* LIST (\HasNoChildren \Subscribed) "/" "Job/2026"`)
	hasNot("LIST (SUBSCRIBED) after RENAME", list, "Work/2026")
	hasNot("LIST (SUBSCRIBED) after RENAME", list, "Job")
	hasNot("LIST (SUBSCRIBED) after RENAME", list, "Work")

	// UNSUBSCRIBE of a name that does not exist and is subscribed.
	ok("u2", `UNSUBSCRIBE "Not yet"`)
	hasNot("LSUB after UNSUBSCRIBE", ok("l6", `LSUB "" "*"`), "Not yet")
}
