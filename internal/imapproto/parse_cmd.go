package imapproto

// The commands: dispatch on the name, and the commands without
// FETCH/STORE (parse_fetch.go) and SEARCH (parse_search.go).

import (
	"encoding/base64"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// command reads what follows the tag.
func (d *Decoder) command(cmd *Command) error {
	name, err := d.keyword("command name")
	if err != nil {
		return err
	}
	if name == "UID" {
		cmd.UID = true
		if err := d.sp(); err != nil {
			return err
		}
		if name, err = d.keyword("command name after UID"); err != nil {
			return err
		}
		switch name {
		case "COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE":
		default:
			return errSyntax("unknown command UID %s", name)
		}
	}
	cmd.Name = name
	d.quiet = name == "LOGIN" || name == "AUTHENTICATE"
	switch name {
	case "CAPABILITY", "NOOP", "CHECK", "LOGOUT", "STARTTLS", "UNAUTHENTICATE", "NAMESPACE", "IDLE", "CLOSE", "UNSELECT":
	case "EXPUNGE":
		if cmd.UID {
			err = d.uidExpunge(cmd)
		}
	case "LOGIN":
		err = d.login(cmd)
	case "AUTHENTICATE":
		err = d.authenticate(cmd)
	case "ENABLE":
		err = d.enable(cmd)
	case "ID":
		err = d.id(cmd)
	case "SELECT", "EXAMINE":
		err = d.selectCmd(cmd)
	case "CREATE":
		err = d.create(cmd)
	case "DELETE", "SUBSCRIBE", "UNSUBSCRIBE":
		err = d.mailboxCmd(cmd)
	case "RENAME":
		err = d.rename(cmd)
	case "LIST":
		err = d.list(cmd)
	case "LSUB":
		err = d.lsub(cmd)
	case "STATUS":
		err = d.status(cmd)
	case "APPEND":
		err = d.appendCmd(cmd)
	case "SEARCH":
		err = d.search(cmd)
	case "FETCH":
		err = d.fetch(cmd)
	case "STORE":
		err = d.store(cmd)
	case "COPY", "MOVE":
		err = d.copyCmd(cmd)
	default:
		return errSyntax("unknown command %s", name)
	}
	if err != nil {
		return err
	}
	if a, ok := cmd.Args.(*AppendArgs); ok && a.TooBig {
		return nil // the rest of the command is not read, or is dropped
	}
	return d.end()
}

func (d *Decoder) uidExpunge(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	set, err := d.numSet(true)
	if err != nil {
		return err
	}
	cmd.Args = &ExpungeArgs{UIDs: set.(imap.UIDSet)}
	return nil
}

func (d *Decoder) login(cmd *Command) error {
	var a LoginArgs
	var err error
	if err = d.sp(); err != nil {
		return err
	}
	if a.Username, err = d.astring("user name"); err != nil {
		return err
	}
	if err = d.sp(); err != nil {
		return err
	}
	if a.Password, err = d.astring("password"); err != nil {
		return err
	}
	cmd.Args = &a
	return nil
}

// authenticate reads AUTHENTICATE mechanism [SP initial-response]
// (RFC 4959: base64, "=" for an empty one).
func (d *Decoder) authenticate(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	mech, err := d.keyword("SASL mechanism")
	if err != nil {
		return err
	}
	a := &AuthenticateArgs{Mechanism: mech}
	cmd.Args = a
	if !d.maybe(' ') {
		return nil
	}
	start := d.pos
	for d.pos < len(d.line) && isBase64Char(d.line[d.pos]) {
		d.pos++
	}
	ir := d.line[start:d.pos]
	a.HasInitial = true
	if len(ir) == 0 {
		return d.missing("initial response")
	}
	if len(ir) == 1 && ir[0] == '=' {
		a.Initial = []byte{}
		return nil
	}
	a.Initial = make([]byte, base64.StdEncoding.DecodedLen(len(ir)))
	n, err := base64.StdEncoding.Decode(a.Initial, ir)
	if err != nil {
		return errSyntax("initial response is not base64")
	}
	a.Initial = a.Initial[:n]
	return nil
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || isDigit(c) || c == '+' || c == '/' || c == '='
}

// enable reads ENABLE 1*(SP capability).
func (d *Decoder) enable(cmd *Command) error {
	a := &EnableArgs{}
	for d.maybe(' ') {
		c, err := d.atom("capability")
		if err != nil {
			return err
		}
		a.Caps = append(a.Caps, canonicalCap(c))
	}
	if len(a.Caps) == 0 {
		return d.missing("capability")
	}
	cmd.Args = a
	return nil
}

// canonicalCap upper-cases a capability name, but for the two that are
// not all upper case.
func canonicalCap(s string) imap.Cap {
	for _, c := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2} {
		if strings.EqualFold(s, string(c)) {
			return c
		}
	}
	return imap.Cap(strings.ToUpper(s))
}

// RFC 2971 §3.3's bounds on ID's parameters.
const (
	maxIDParams   = 30
	maxIDKeyLen   = 30
	maxIDValueLen = 1024
)

// id reads ID SP ("(" [string SP nstring *(SP string SP nstring)] ")" / NIL).
func (d *Decoder) id(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	a := &IDArgs{}
	cmd.Args = a
	if !d.maybe('(') {
		if _, ok, err := d.nstring("ID parameter list"); err != nil || ok {
			if err == nil {
				err = errSyntax("ID parameter list must be a list or NIL")
			}
			return err
		}
		return nil
	}
	a.Params = []IDParam{}
	if d.maybe(')') {
		return nil
	}
	for {
		if len(a.Params) == maxIDParams {
			return errSyntax("more than %d ID parameters", maxIDParams)
		}
		key, err := d.str("ID field name")
		if err != nil {
			return err
		}
		if len(key) > maxIDKeyLen {
			return errSyntax("ID field name longer than %d bytes", maxIDKeyLen)
		}
		if err := d.sp(); err != nil {
			return err
		}
		v, ok, err := d.nstring("ID field value")
		if err != nil {
			return err
		}
		if len(v) > maxIDValueLen {
			return errSyntax("ID field value longer than %d bytes", maxIDValueLen)
		}
		p := IDParam{Key: key}
		if ok {
			p.Value = &v
		}
		a.Params = append(a.Params, p)
		if d.maybe(')') {
			return nil
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
}

// selectCmd reads SELECT and EXAMINE: mailbox [SP "(" select-param
// *(SP select-param) ")"], with CONDSTORE and QRESYNC (RFC 7162) as the
// parameters.
func (d *Decoder) selectCmd(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	mbox, err := d.mailbox()
	if err != nil {
		return err
	}
	a := &SelectArgs{Mailbox: mbox}
	a.Options.ReadOnly = cmd.Name == "EXAMINE"
	cmd.Args = a
	if !d.maybe(' ') {
		return nil
	}
	if err := d.expect('('); err != nil {
		return err
	}
	for !d.maybe(')') {
		if len(d.line) > 0 && d.line[d.pos-1] != '(' {
			if err := d.sp(); err != nil {
				return err
			}
		}
		name, err := d.keyword("select parameter")
		if err != nil {
			return err
		}
		switch name {
		case "CONDSTORE":
			a.Options.CondStore = true
			cmd.CondStore = true
		case "QRESYNC":
			if err := d.sp(); err != nil {
				return err
			}
			if a.Options.QResync, err = d.qresync(); err != nil {
				return err
			}
			cmd.CondStore = true
		default:
			return errSyntax("unknown select parameter %s", name)
		}
	}
	return nil
}

// qresync reads "(" uidvalidity SP mod-sequence-value [SP known-uids]
// [SP "(" known-sequence-set SP known-uid-set ")"] ")".
func (d *Decoder) qresync() (*QResyncParams, error) {
	var q QResyncParams
	var err error
	if err = d.expect('('); err != nil {
		return nil, err
	}
	if q.UIDValidity, err = d.nzNumber("UIDVALIDITY"); err != nil {
		return nil, err
	}
	if err = d.sp(); err != nil {
		return nil, err
	}
	if q.ModSeq, err = d.modSeq(true); err != nil {
		return nil, err
	}
	if d.maybe(' ') && d.peek() != '(' {
		r, err := d.numRanges("known UIDs", false)
		if err != nil {
			return nil, err
		}
		q.KnownUIDs = uidSet(r)
		if !d.maybe(' ') {
			return &q, d.expect(')')
		}
	}
	if d.maybe('(') {
		r, err := d.numRanges("known sequence set", false)
		if err != nil {
			return nil, err
		}
		q.SeqMatchSeqs = seqSet(r)
		if err = d.sp(); err != nil {
			return nil, err
		}
		if r, err = d.numRanges("known UID set", false); err != nil {
			return nil, err
		}
		q.SeqMatchUIDs = uidSet(r)
		if err = d.expect(')'); err != nil {
			return nil, err
		}
		if countRanges(q.SeqMatchSeqs) != countUIDRanges(q.SeqMatchUIDs) {
			return nil, errSyntax("QRESYNC known sequence set and known UID set differ in size")
		}
	}
	return &q, d.expect(')')
}

func countRanges(s imap.SeqSet) uint64 {
	var n uint64
	for _, r := range s {
		n += uint64(r.Stop-r.Start) + 1
	}
	return n
}

func countUIDRanges(s imap.UIDSet) uint64 {
	var n uint64
	for _, r := range s {
		n += uint64(r.Stop-r.Start) + 1
	}
	return n
}

// create reads CREATE mailbox [SP "(" USE SP "(" [use-attr *(SP
// use-attr)] ")" ")"] (RFC 6154 §3).
func (d *Decoder) create(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	mbox, err := d.mailbox()
	if err != nil {
		return err
	}
	a := &CreateArgs{Mailbox: mbox}
	cmd.Args = a
	if !d.maybe(' ') {
		return nil
	}
	if err := d.expect('('); err != nil {
		return err
	}
	for {
		name, err := d.keyword("create parameter")
		if err != nil {
			return err
		}
		if name != "USE" {
			return errSyntax("unknown create parameter %s", name)
		}
		if err := d.sp(); err != nil {
			return err
		}
		flags, err := d.flagList()
		if err != nil {
			return err
		}
		for _, f := range flags {
			if !strings.HasPrefix(string(f), `\`) {
				return errSyntax("special-use attribute %s does not start with \\", f)
			}
			a.Options.SpecialUse = append(a.Options.SpecialUse, canonicalAttr(string(f)))
		}
		if d.maybe(')') {
			return nil
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
}

func canonicalAttr(s string) imap.MailboxAttr {
	for _, a := range canonicalAttrs {
		if strings.EqualFold(s, string(a)) {
			return a
		}
	}
	return imap.MailboxAttr(s)
}

func (d *Decoder) mailboxCmd(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	mbox, err := d.mailbox()
	if err != nil {
		return err
	}
	cmd.Args = &MailboxArgs{Mailbox: mbox}
	return nil
}

func (d *Decoder) rename(cmd *Command) error {
	var a RenameArgs
	var err error
	if err = d.sp(); err != nil {
		return err
	}
	if a.Mailbox, err = d.mailbox(); err != nil {
		return err
	}
	if err = d.sp(); err != nil {
		return err
	}
	if a.NewName, err = d.mailbox(); err != nil {
		return err
	}
	cmd.Args = &a
	return nil
}

func (d *Decoder) copyCmd(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	set, err := d.numSet(cmd.UID)
	if err != nil {
		return err
	}
	if err := d.sp(); err != nil {
		return err
	}
	dest, err := d.mailbox()
	if err != nil {
		return err
	}
	cmd.Args = &CopyArgs{NumSet: set, Dest: dest}
	return nil
}

// list reads LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP
// list-return-opts] (RFC 5258, RFC 6154, RFC 5819).
func (d *Decoder) list(cmd *Command) error {
	a := &ListArgs{}
	cmd.Args = a
	if err := d.sp(); err != nil {
		return err
	}
	if d.maybe('(') {
		base := false
		recursive := false
		for !d.maybe(')') {
			if d.line[d.pos-1] != '(' {
				if err := d.sp(); err != nil {
					return err
				}
			}
			name, err := d.keyword("LIST selection option")
			if err != nil {
				return err
			}
			switch name {
			case "SUBSCRIBED":
				a.Options.SelectSubscribed = true
				base = true
			case "REMOTE":
				a.Options.SelectRemote = true
			case "RECURSIVEMATCH":
				a.Options.SelectRecursiveMatch = true
				recursive = true
			case "SPECIAL-USE":
				a.Options.SelectSpecialUse = true
				base = true
			default:
				return errSyntax("unknown LIST selection option %s", name)
			}
		}
		// RFC 5258 §3: RECURSIVEMATCH alone (or with REMOTE) is BAD.
		if recursive && !base {
			return errSyntax("RECURSIVEMATCH needs another selection option")
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
	var err error
	if a.Ref, err = d.listMailbox("reference name"); err != nil {
		return err
	}
	if err := d.sp(); err != nil {
		return err
	}
	if d.maybe('(') {
		for {
			p, err := d.listMailbox("mailbox pattern")
			if err != nil {
				return err
			}
			a.Patterns = append(a.Patterns, p)
			if d.maybe(')') {
				break
			}
			if err := d.sp(); err != nil {
				return err
			}
		}
	} else {
		p, err := d.listMailbox("mailbox pattern")
		if err != nil {
			return err
		}
		a.Patterns = []string{p}
	}
	if !d.maybe(' ') {
		return nil
	}
	if name, err := d.keyword("RETURN"); err != nil || name != "RETURN" {
		if err == nil {
			err = errSyntax("expected RETURN, not %s", name)
		}
		return err
	}
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
		name, err := d.keyword("LIST return option")
		if err != nil {
			return err
		}
		switch name {
		case "SUBSCRIBED":
			a.Options.ReturnSubscribed = true
		case "CHILDREN":
			a.Options.ReturnChildren = true
		case "SPECIAL-USE":
			a.Options.ReturnSpecialUse = true
		case "STATUS":
			if err := d.sp(); err != nil {
				return err
			}
			so, err := d.statusAtts()
			if err != nil {
				return err
			}
			if so.HighestModSeq {
				cmd.CondStore = true
			}
			a.Options.ReturnStatus = so
		default:
			return errSyntax("unknown LIST return option %s", name)
		}
	}
	return nil
}

// lsub reads LSUB mailbox SP list-mailbox. Options.SelectSubscribed is
// set, as Session.List wants for LSUB.
func (d *Decoder) lsub(cmd *Command) error {
	a := &ListArgs{}
	a.Options.SelectSubscribed = true
	cmd.Args = a
	var err error
	if err = d.sp(); err != nil {
		return err
	}
	if a.Ref, err = d.listMailbox("reference name"); err != nil {
		return err
	}
	if err = d.sp(); err != nil {
		return err
	}
	p, err := d.listMailbox("mailbox pattern")
	if err != nil {
		return err
	}
	a.Patterns = []string{p}
	return nil
}

// status reads STATUS mailbox SP "(" status-att *(SP status-att) ")".
func (d *Decoder) status(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	mbox, err := d.mailbox()
	if err != nil {
		return err
	}
	if err := d.sp(); err != nil {
		return err
	}
	so, err := d.statusAtts()
	if err != nil {
		return err
	}
	cmd.CondStore = so.HighestModSeq
	cmd.Args = &StatusArgs{Mailbox: mbox, Options: *so}
	return nil
}

func (d *Decoder) statusAtts() (*imap.StatusOptions, error) {
	if err := d.expect('('); err != nil {
		return nil, err
	}
	var o imap.StatusOptions
	for {
		name, err := d.keyword("status item")
		if err != nil {
			return nil, err
		}
		switch name {
		case "MESSAGES":
			o.NumMessages = true
		case "RECENT":
			o.NumRecent = true
		case "UIDNEXT":
			o.UIDNext = true
		case "UIDVALIDITY":
			o.UIDValidity = true
		case "UNSEEN":
			o.NumUnseen = true
		case "DELETED":
			o.NumDeleted = true
		case "SIZE":
			o.Size = true
		case "APPENDLIMIT":
			o.AppendLimit = true
		case "HIGHESTMODSEQ":
			o.HighestModSeq = true
		default:
			return nil, errSyntax("unknown status item %s", name)
		}
		if d.maybe(')') {
			return &o, nil
		}
		if err := d.sp(); err != nil {
			return nil, err
		}
	}
}

// appendCmd reads APPEND mailbox 1*append-message (RFC 3502), where
// append-message is [SP flag-list] [SP date-time] SP (literal /
// literal8 / "UTF8" SP "(" literal8 ")") (RFC 3516, RFC 6855).
func (d *Decoder) appendCmd(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	mbox, err := d.mailbox()
	if err != nil {
		return err
	}
	a := &AppendArgs{Mailbox: mbox}
	cmd.Args = a
	var total int64
	maxOne, maxTotal := d.maxAppend()
	for {
		if len(a.Messages) > 0 && d.atEnd() {
			return nil
		}
		if err := d.sp(); err != nil {
			return err
		}
		var m AppendMessage
		if d.peek() == '(' {
			if m.Flags, err = d.flagList(); err != nil {
				return err
			}
			if err := d.sp(); err != nil {
				return err
			}
		}
		if d.peek() == '"' {
			if m.Time, err = d.dateTime(); err != nil {
				return err
			}
			if err := d.sp(); err != nil {
				return err
			}
		}
		if c := d.peek(); c == 'U' || c == 'u' {
			name, err := d.keyword("UTF8")
			if err != nil {
				return err
			}
			if name != "UTF8" {
				return errSyntax("unknown APPEND data %s", name)
			}
			if err := d.sp(); err != nil {
				return err
			}
			if err := d.expect('('); err != nil {
				return err
			}
			m.UTF8 = true
		}
		n, sync, _, err := d.literalHeader("APPEND message", true)
		if err != nil {
			return err
		}
		if n > maxOne || n > maxTotal-total {
			// The line ends with this literal: a synchronizing one
			// is never sent, a non-synchronizing one is dropped with
			// what follows it.
			a.TooBig = true
			if !sync {
				return d.discardRest()
			}
			return nil
		}
		total += n
		if m.Literal, err = d.literalBody(n, sync); err != nil {
			return err
		}
		if m.UTF8 {
			if err := d.expect(')'); err != nil {
				return err
			}
		}
		a.Messages = append(a.Messages, m)
	}
}
