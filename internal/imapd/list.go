package imapd

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// subscriptionLister is a store that keeps subscriptions apart from the
// mailboxes, so that a subscribed name that no longer exists stays
// subscribed (RFC 3501 §6.3.6) and LIST shows it \NonExistent.
type subscriptionLister interface {
	Subscriptions() []string
}

// List implements LIST, LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
// SPECIAL-USE (RFC 6154) and LSUB. Special-use attributes and
// \HasChildren/\HasNoChildren are always returned; a parent that does not
// exist but has children is listed as \Noselect.
func (s *session) List(w *imapproto.ListWriter, ref string, patterns []string, options *imap.ListOptions, lsub bool) error {
	if len(patterns) == 0 || (len(patterns) == 1 && patterns[0] == "") {
		// LIST "" "": the hierarchy delimiter and root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	// A run of wildcards matches what one does: matching costs
	// len(pattern) x len(name) per name, and a pattern may be 64 KiB.
	ref = collapseWildcards(ref)
	patterns = slices.Clone(patterns)
	for i, p := range patterns {
		patterns[i] = collapseWildcards(p)
	}
	boxes := s.store.Mailboxes()
	byName := make(map[string]*mailstore.MailboxInfo, len(boxes))
	subscribed := map[string]bool{}
	for i := range boxes {
		byName[boxes[i].Name] = &boxes[i]
		if boxes[i].Subscribed {
			subscribed[boxes[i].Name] = true
		}
	}
	if sl, ok := s.store.(subscriptionLister); ok {
		for _, n := range sl.Subscriptions() {
			subscribed[n] = true
		}
	}
	// Every name with its implied parents; which names have children, and
	// which have subscribed descendants.
	all := map[string]bool{}
	hasChildren := map[string]bool{}
	subChildren := map[string][]string{}
	for n := range byName {
		all[n] = true
		for p := range parents(n) {
			all[p] = true
			hasChildren[p] = true
		}
	}
	for n := range subscribed {
		if options.SelectSubscribed || lsub {
			all[n] = true
		}
		for p := range parents(n) {
			if options.SelectSubscribed || lsub {
				all[p] = true
			}
			subChildren[p] = append(subChildren[p], n)
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)

	matches := func(name string) bool {
		for _, p := range patterns {
			if matchList(name, ref, p) || (name == "INBOX" && matchList(name, ref, normalizeName(p))) {
				return true
			}
		}
		return false
	}
	for _, name := range names {
		if !matches(name) {
			continue
		}
		info := byName[name]
		sub := subscribed[name]
		data := &imap.ListData{Mailbox: name, Delim: delim}
		if lsub {
			// LSUB (RFC 3501 §6.3.9): subscribed names; with "%", a
			// parent of a subscribed name is answered \Noselect.
			if !sub {
				if len(subChildren[name]) == 0 {
					continue
				}
				data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
			} else if info == nil {
				data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
			}
			if err := w.WriteList(data); err != nil {
				return fmt.Errorf("imapd: writing an LSUB response: %w", err)
			}
			continue
		}
		if options.SelectSubscribed && !sub {
			if !options.SelectRecursiveMatch || !unmatchedChild(subChildren[name], matches) {
				continue
			}
		}
		if options.SelectRecursiveMatch && options.SelectSubscribed && unmatchedChild(subChildren[name], matches) {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.SelectSpecialUse && (info == nil || info.Special == "") {
			continue
		}
		if info == nil {
			if byName[name] == nil && !hasChildren[name] {
				data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
			}
		}
		if hasChildren[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else if info != nil {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if sub && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if info != nil && info.Special != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(info.Special))
		}
		if options.ReturnStatus != nil && info != nil {
			st, err := s.status(*info, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return fmt.Errorf("imapd: writing a LIST response: %w", err)
		}
	}
	return nil
}

// unmatchedChild says whether one of the subscribed descendants is not
// listed by the patterns itself: CHILDINFO then tells the client of it.
func unmatchedChild(children []string, matches func(string) bool) bool {
	for _, c := range children {
		if !matches(c) {
			return true
		}
	}
	return false
}

// parents yields the names above name: "a/b/c" gives "a/b", "a".
func parents(name string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for n := name; ; {
			i := strings.LastIndexByte(n, delim)
			if i <= 0 {
				return
			}
			n = n[:i]
			if !yield(n) {
				return
			}
		}
	}
}

// collapseWildcards replaces each run of wildcards with the one that
// matches the same: "*" if the run has one, else "%".
func collapseWildcards(p string) string {
	if !strings.Contains(p, "**") && !strings.Contains(p, "*%") && !strings.Contains(p, "%*") && !strings.Contains(p, "%%") {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '*' && c != '%' {
			b = append(b, c)
			continue
		}
		j := i
		for j < len(p) && (p[j] == '*' || p[j] == '%') {
			if p[j] == '*' {
				c = '*'
			}
			j++
		}
		b = append(b, c)
		i = j - 1
	}
	return string(b)
}

// matchList says whether a mailbox name matches a LIST reference and
// pattern (RFC 3501 §6.3.8): "*" matches anything, "%" anything but the
// hierarchy delimiter. The reference is prefixed to the pattern. It runs
// in time proportional to len(pattern) x len(name), whatever the pattern.
func matchList(name, ref, pattern string) bool {
	if ref != "" {
		if strings.HasSuffix(ref, string(delim)) && strings.HasPrefix(pattern, string(delim)) {
			pattern = pattern[1:]
		}
		pattern = ref + pattern
	}
	// literal characters beyond the name's length cannot match
	if len(pattern)-strings.Count(pattern, "*")-strings.Count(pattern, "%") > len(name) {
		return false
	}
	// cur[i]: the pattern so far matches name[:i].
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for k := 0; k < len(pattern); k++ {
		c := pattern[k]
		clear(next)
		switch c {
		case '*', '%':
			// reach: some j <= i has cur[j] and name[j:i] may be
			// covered by the wildcard.
			reach := false
			for i := 0; i <= len(name); i++ {
				if i > 0 && c == '%' && name[i-1] == delim {
					reach = false
				}
				reach = reach || cur[i]
				next[i] = reach
			}
		default:
			for i := 0; i < len(name); i++ {
				if cur[i] && name[i] == c {
					next[i+1] = true
				}
			}
		}
		cur, next = next, cur
	}
	return cur[len(name)]
}
