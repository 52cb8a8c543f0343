package mailstore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Document types.
const (
	typeMailbox       = "mailbox"
	typeMessage       = "message"
	typeSubscriptions = "subscriptions"
)

// MailboxDocType is the type of mailbox documents. The mail store reads
// them through docsync's type index at every Open (the index on disk has
// no special use or subscription), so an account indexes this type
// before its first sync (docsync.Engine.IndexTypes).
const MailboxDocType = typeMailbox

// Document bodies.
type mailboxDoc struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Special string `json:"special,omitempty"`
	// Subscribed is how subscriptions were kept before the
	// subscriptions document (subscriptions.go): still written, read
	// only to carry them over.
	Subscribed bool `json:"subscribed"`
}

// subscriptionsDoc is the account's subscribed names, one document for
// all (subscriptions.go). Names is never null: docsync merges arrays of
// strings as sets, per name.
type subscriptionsDoc struct {
	Type  string   `json:"type"`
	Names []string `json:"names"`
}

type messageDoc struct {
	Type  string    `json:"type"`
	Mbox  string    `json:"mbox"`
	Blob  string    `json:"blob"`
	Size  int64     `json:"size"`
	Date  time.Time `json:"date"`
	Flags []string  `json:"flags"`
}

// Special-use mailboxes (RFC 6154) that always exist.
var specials = []struct{ name, use string }{
	{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}, {"Archive", `\Archive`},
}

func (s *Store) mailboxDocID(name string) string {
	return seal.DocID(&s.keys.DocID, "mailbox:"+name)
}

func (s *Store) subscriptionsDocID() string {
	return seal.DocID(&s.keys.DocID, "subscriptions")
}

// NormalizeName turns a client's mailbox name into ours: INBOX in any
// case is INBOX; the hierarchy delimiter is '/'.
func NormalizeName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if u, rest, ok := strings.Cut(name, "/"); ok && strings.EqualFold(u, "INBOX") {
		return "INBOX/" + rest
	}
	return name
}

func validName(name string) error {
	if name == "" || len(name) > 512 || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return fmt.Errorf("mailstore: invalid mailbox name %q", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
			return fmt.Errorf("mailstore: invalid mailbox name %q", name)
		}
	}
	return nil
}

// normFlags sorts and dedupes flags; system flags are case-normalised.
func normFlags(in []string) []string {
	out := make([]string, 0, len(in))
	for _, f := range in {
		if f == "" || strings.EqualFold(f, `\Recent`) {
			continue
		}
		if strings.HasPrefix(f, `\`) {
			for _, sys := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`} {
				if strings.EqualFold(f, sys) {
					f = sys
				}
			}
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
