package imapproto

// SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4, ESEARCH's RETURN: RFC 4731,
// SAVE and "$": RFC 5182, MODSEQ: RFC 7162 §3.1.5).
//
// The keys map onto imap.SearchCriteria as go-imap's types mean them:
// the keys of one program or one parenthesized list are ANDed; ON day is
// SINCE day and BEFORE day+1 (SENTON likewise); dates are UTC midnights.
// The obsolete keys (RFC 3501) become flag tests on \Recent, which the
// session evaluates with its view of recent messages:
//
//	RECENT  Flag \Recent
//	NEW     Flag \Recent, NotFlag \Seen  (RECENT UNSEEN)
//	OLD     NotFlag \Recent              (NOT RECENT)
//
// SMALLER 0 (nothing is) is NOT ALL; LARGER 0 is NOT SMALLER 1. "$" as a
// key is UID imap.SearchRes(); a sequence set is SeqNum. CHARSET is
// passed on as given, for the connection to refuse what it does not
// know (NO [BADCHARSET]). RETURN () gives Return true and no option
// (RFC 4731: the same as ALL); the parser adds nothing.

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// maxSearchDepth bounds the nesting of NOT, OR and parentheses.
const maxSearchDepth = 500

// search reads SEARCH [SP "RETURN" SP "(" [search-return-opt *(SP
// search-return-opt)] ")"] SP ["CHARSET" SP astring SP] search-key
// *(SP search-key).
func (d *Decoder) search(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	a := &SearchArgs{}
	cmd.Args = a
	if d.nextWord("RETURN") {
		a.Return = true
		if err := d.sp(); err != nil {
			return err
		}
		if err := d.expect('('); err != nil {
			return err
		}
		for !d.maybe(')') {
			if d.line[d.pos-1] != '(' {
				if err := d.sp(); err != nil {
					return err
				}
			}
			name, err := d.keyword("SEARCH return option")
			if err != nil {
				return err
			}
			switch name {
			case "MIN":
				a.Options.ReturnMin = true
			case "MAX":
				a.Options.ReturnMax = true
			case "ALL":
				a.Options.ReturnAll = true
			case "COUNT":
				a.Options.ReturnCount = true
			case "SAVE":
				a.Options.ReturnSave = true
			default:
				return errSyntax("unknown SEARCH return option %s", name)
			}
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
	if d.nextWord("CHARSET") {
		var err error
		if err = d.sp(); err != nil {
			return err
		}
		if a.Charset, err = d.astring("charset"); err != nil {
			return err
		}
		if err = d.sp(); err != nil {
			return err
		}
	}
	d.depth = 0
	for {
		if err := d.searchKey(cmd, &a.Criteria); err != nil {
			return err
		}
		if !d.maybe(' ') {
			return nil
		}
	}
}

// nextWord consumes word (upper case) if it is the next atom, in any
// case, and followed by a space or the end.
func (d *Decoder) nextWord(word string) bool {
	rest := d.line[d.pos:]
	if len(rest) < len(word) || upperASCII(rest[:len(word)]) != word {
		return false
	}
	if len(rest) > len(word) && rest[len(word)] != ' ' {
		return false
	}
	d.pos += len(word)
	return true
}

var (
	flagRecent = imap.Flag(`\Recent`)
	headerKeys = map[string]string{"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}
	flagKeys   = map[string]imap.Flag{
		"ANSWERED": imap.FlagAnswered, "DELETED": imap.FlagDeleted, "DRAFT": imap.FlagDraft,
		"FLAGGED": imap.FlagFlagged, "SEEN": imap.FlagSeen,
	}
)

func (d *Decoder) searchKey(cmd *Command, c *imap.SearchCriteria) error {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxSearchDepth {
		return errSyntax("search keys nested too deep")
	}
	if d.maybe('(') {
		for {
			if err := d.searchKey(cmd, c); err != nil {
				return err
			}
			if d.maybe(')') {
				return nil
			}
			if err := d.sp(); err != nil {
				return err
			}
		}
	}
	start := d.pos
	tok := d.run(cSearch)
	if len(tok) == 0 {
		return d.missing("search key")
	}
	if tok[0] == '*' || isDigit(tok[0]) {
		d.pos = start
		r, err := d.numRanges("sequence set", true)
		if err != nil {
			return err
		}
		c.SeqNum = append(c.SeqNum, seqSet(r))
		return nil
	}
	if len(tok) == 1 && tok[0] == '$' {
		c.UID = append(c.UID, imap.SearchRes())
		return nil
	}
	key := upperASCII(tok)
	if f, ok := flagKeys[key]; ok {
		c.Flag = append(c.Flag, f)
		return nil
	}
	if strings.HasPrefix(key, "UN") {
		if f, ok := flagKeys[key[2:]]; ok {
			c.NotFlag = append(c.NotFlag, f)
			return nil
		}
	}
	if h, ok := headerKeys[key]; ok {
		if err := d.sp(); err != nil {
			return err
		}
		v, err := d.astring(key + " value")
		if err != nil {
			return err
		}
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: h, Value: v})
		return nil
	}
	switch key {
	case "ALL":
	case "RECENT":
		c.Flag = append(c.Flag, flagRecent)
	case "NEW":
		c.Flag = append(c.Flag, flagRecent)
		c.NotFlag = append(c.NotFlag, imap.FlagSeen)
	case "OLD":
		c.NotFlag = append(c.NotFlag, flagRecent)
	case "KEYWORD", "UNKEYWORD":
		if err := d.sp(); err != nil {
			return err
		}
		f, err := d.flag()
		if err != nil {
			return err
		}
		if key == "KEYWORD" {
			c.Flag = append(c.Flag, f)
		} else {
			c.NotFlag = append(c.NotFlag, f)
		}
	case "HEADER":
		var h imap.SearchCriteriaHeaderField
		var err error
		if err = d.sp(); err != nil {
			return err
		}
		if h.Key, err = d.astring("header field name"); err != nil {
			return err
		}
		if err = d.sp(); err != nil {
			return err
		}
		if h.Value, err = d.astring("header value"); err != nil {
			return err
		}
		c.Header = append(c.Header, h)
	case "BODY", "TEXT":
		if err := d.sp(); err != nil {
			return err
		}
		v, err := d.astring(key + " value")
		if err != nil {
			return err
		}
		if key == "BODY" {
			c.Body = append(c.Body, v)
		} else {
			c.Text = append(c.Text, v)
		}
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		if err := d.sp(); err != nil {
			return err
		}
		t, err := d.searchDate()
		if err != nil {
			return err
		}
		next := t.AddDate(0, 0, 1)
		switch key {
		case "BEFORE":
			c.Before = earliest(c.Before, t)
		case "ON":
			c.Since = latest(c.Since, t)
			c.Before = earliest(c.Before, next)
		case "SINCE":
			c.Since = latest(c.Since, t)
		case "SENTBEFORE":
			c.SentBefore = earliest(c.SentBefore, t)
		case "SENTON":
			c.SentSince = latest(c.SentSince, t)
			c.SentBefore = earliest(c.SentBefore, next)
		case "SENTSINCE":
			c.SentSince = latest(c.SentSince, t)
		}
	case "LARGER", "SMALLER":
		if err := d.sp(); err != nil {
			return err
		}
		n, err := d.number64(key + " size")
		if err != nil {
			return err
		}
		switch {
		case key == "LARGER" && n == 0:
			c.Not = append(c.Not, imap.SearchCriteria{Smaller: 1})
		case key == "LARGER":
			c.Larger = max(c.Larger, n)
		case n == 0:
			c.Not = append(c.Not, imap.SearchCriteria{})
		case c.Smaller == 0 || n < c.Smaller:
			c.Smaller = n
		}
	case "UID":
		if err := d.sp(); err != nil {
			return err
		}
		set, err := d.numSet(true)
		if err != nil {
			return err
		}
		c.UID = append(c.UID, set.(imap.UIDSet))
	case "NOT":
		if err := d.sp(); err != nil {
			return err
		}
		var n imap.SearchCriteria
		if err := d.searchKey(cmd, &n); err != nil {
			return err
		}
		c.Not = append(c.Not, n)
	case "OR":
		var or [2]imap.SearchCriteria
		for i := range or {
			if err := d.sp(); err != nil {
				return err
			}
			if err := d.searchKey(cmd, &or[i]); err != nil {
				return err
			}
		}
		c.Or = append(c.Or, or)
	case "MODSEQ":
		return d.searchModSeq(cmd, c)
	default:
		d.pos = start
		return errSyntax("unknown search key %s", key)
	}
	return nil
}

// searchModSeq reads what follows MODSEQ: [SP entry-name SP
// entry-type-req] SP mod-sequence-valzer.
func (d *Decoder) searchModSeq(cmd *Command, c *imap.SearchCriteria) error {
	if err := d.sp(); err != nil {
		return err
	}
	m := &imap.SearchCriteriaModSeq{}
	if d.peek() == '"' {
		name, err := d.quoted("MODSEQ entry name")
		if err != nil {
			return err
		}
		if len(name) <= len("/flags/") || !strings.EqualFold(name[:len("/flags/")], "/flags/") {
			return errSyntax("MODSEQ entry name is not /flags/<flag>")
		}
		m.MetadataName = name
		if err := d.sp(); err != nil {
			return err
		}
		typ, err := d.keyword("MODSEQ entry type")
		if err != nil {
			return err
		}
		switch typ {
		case "PRIV":
			m.MetadataType = imap.SearchCriteriaMetadataPrivate
		case "SHARED":
			m.MetadataType = imap.SearchCriteriaMetadataShared
		case "ALL":
			m.MetadataType = imap.SearchCriteriaMetadataAll
		default:
			return errSyntax("unknown MODSEQ entry type %s", typ)
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
	var err error
	if m.ModSeq, err = d.modSeq(true); err != nil {
		return err
	}
	if c.ModSeq == nil {
		c.ModSeq = m
	} else {
		// A second MODSEQ key ANDed: NOT NOT holds it.
		c.Not = append(c.Not, imap.SearchCriteria{Not: []imap.SearchCriteria{{ModSeq: m}}})
	}
	cmd.CondStore = true
	return nil
}

func earliest(t, u time.Time) time.Time {
	if t.IsZero() || u.Before(t) {
		return u
	}
	return t
}

func latest(t, u time.Time) time.Time {
	if t.IsZero() || u.After(t) {
		return u
	}
	return t
}
