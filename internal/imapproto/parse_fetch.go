package imapproto

// FETCH (RFC 9051 §6.4.5, RFC 3501 §6.4.5, BINARY: RFC 3516, CONDSTORE
// and QRESYNC modifiers: RFC 7162) and STORE.

import (
	"github.com/emersion/go-imap/v2"
)

// fetch reads FETCH sequence-set SP ("ALL" / "FULL" / "FAST" /
// fetch-att / "(" fetch-att *(SP fetch-att) ")") [SP "(" fetch-modifier
// *(SP fetch-modifier) ")"]. UID FETCH asks for UID too; CHANGEDSINCE
// asks for MODSEQ too (RFC 7162 §3.1.4.1).
func (d *Decoder) fetch(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	set, err := d.numSet(cmd.UID)
	if err != nil {
		return err
	}
	a := &FetchArgs{NumSet: set}
	cmd.Args = a
	o := &a.Options
	if err := d.sp(); err != nil {
		return err
	}
	if d.maybe('(') {
		for {
			if err := d.fetchAtt(cmd, o); err != nil {
				return err
			}
			if d.maybe(')') {
				break
			}
			if err := d.sp(); err != nil {
				return err
			}
		}
	} else {
		start := d.pos
		name := d.itemName()
		switch name {
		case "ALL", "FAST", "FULL":
			o.Flags, o.InternalDate, o.RFC822Size = true, true, true
			if name != "FAST" {
				o.Envelope = true
			}
			if name == "FULL" {
				o.BodyStructure = &imap.FetchItemBodyStructure{}
			}
		default:
			d.pos = start
			if err := d.fetchAtt(cmd, o); err != nil {
				return err
			}
		}
	}
	if cmd.UID {
		o.UID = true
	}
	if !d.maybe(' ') {
		return nil
	}
	if err := d.expect('('); err != nil {
		return err
	}
	changedSince := false
	for {
		name, err := d.keyword("FETCH modifier")
		if err != nil {
			return err
		}
		switch name {
		case "CHANGEDSINCE":
			if err := d.sp(); err != nil {
				return err
			}
			if o.ChangedSince, err = d.modSeq(false); err != nil {
				return err
			}
			o.ModSeq = true
			changedSince = true
			cmd.CondStore = true
		case "VANISHED":
			if !cmd.UID {
				return errSyntax("VANISHED only with UID FETCH")
			}
			o.Vanished = true
		default:
			return errSyntax("unknown FETCH modifier %s", name)
		}
		if d.maybe(')') {
			break
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
	if o.Vanished && !changedSince {
		return errSyntax("VANISHED without CHANGEDSINCE")
	}
	return nil
}

// itemName reads a FETCH item's name (letters, digits and "."), upper
// case.
func (d *Decoder) itemName() string {
	start := d.pos
	for d.pos < len(d.line) {
		c := d.line[d.pos]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || isDigit(c) || c == '.' || c == '-') {
			break
		}
		d.pos++
	}
	return upperASCII(d.line[start:d.pos])
}

func (d *Decoder) fetchAtt(cmd *Command, o *FetchOptions) error {
	start := d.pos
	name := d.itemName()
	switch name {
	case "":
		return d.missing("FETCH item")
	case "ENVELOPE":
		o.Envelope = true
	case "FLAGS":
		o.Flags = true
	case "INTERNALDATE":
		o.InternalDate = true
	case "RFC822.SIZE":
		o.RFC822Size = true
	case "UID":
		o.UID = true
	case "MODSEQ":
		o.ModSeq = true
		cmd.CondStore = true
	case "BODYSTRUCTURE":
		o.BodyStructure = &imap.FetchItemBodyStructure{Extended: true}
	case "RFC822":
		if o.RFC822 == nil {
			o.RFC822 = &imap.FetchItemBodySection{}
			o.BodySection = append(o.BodySection, o.RFC822)
		}
	case "RFC822.HEADER":
		if o.RFC822Header == nil {
			o.RFC822Header = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
			o.BodySection = append(o.BodySection, o.RFC822Header)
		}
	case "RFC822.TEXT":
		if o.RFC822Text == nil {
			o.RFC822Text = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
			o.BodySection = append(o.BodySection, o.RFC822Text)
		}
	case "BODY", "BODY.PEEK":
		if d.peek() != '[' {
			if name == "BODY.PEEK" {
				return errSyntax("BODY.PEEK without a section")
			}
			// BODY and BODYSTRUCTURE both: BODYSTRUCTURE wins.
			if o.BodyStructure == nil {
				o.BodyStructure = &imap.FetchItemBodyStructure{}
			}
			return nil
		}
		s := &imap.FetchItemBodySection{Peek: name == "BODY.PEEK"}
		if err := d.section(s); err != nil {
			return err
		}
		var err error
		if s.Partial, err = d.partial(); err != nil {
			return err
		}
		o.BodySection = append(o.BodySection, s)
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		part, err := d.sectionBinary()
		if err != nil {
			return err
		}
		if name == "BINARY.SIZE" {
			o.BinarySectionSize = append(o.BinarySectionSize, &imap.FetchItemBinarySectionSize{Part: part})
			return nil
		}
		s := &imap.FetchItemBinarySection{Part: part, Peek: name == "BINARY.PEEK"}
		if s.Partial, err = d.partial(); err != nil {
			return err
		}
		o.BinarySection = append(o.BinarySection, s)
	default:
		d.pos = start
		return errSyntax("unknown FETCH item %s", name)
	}
	return nil
}

// section reads "[" [section-spec] "]": section-msgtext /
// (section-part ["." (section-msgtext / "MIME")]).
func (d *Decoder) section(s *imap.FetchItemBodySection) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.maybe(']') {
		return nil
	}
	if isDigit(d.peek()) {
		var err error
		if s.Part, err = d.sectionPart(); err != nil {
			return err
		}
		if d.maybe(']') {
			return nil
		}
		if err := d.expect('.'); err != nil {
			return err
		}
	}
	spec := d.itemName()
	switch spec {
	case "HEADER":
		s.Specifier = imap.PartSpecifierHeader
	case "TEXT":
		s.Specifier = imap.PartSpecifierText
	case "MIME":
		if len(s.Part) == 0 {
			return errSyntax("MIME section without a part number")
		}
		s.Specifier = imap.PartSpecifierMIME
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		s.Specifier = imap.PartSpecifierHeader
		if err := d.sp(); err != nil {
			return err
		}
		names, err := d.headerList()
		if err != nil {
			return err
		}
		if spec == "HEADER.FIELDS" {
			s.HeaderFields = names
		} else {
			s.HeaderFieldsNot = names
		}
	case "":
		return d.missing("section")
	default:
		return errSyntax("unknown section %s", spec)
	}
	return d.expect(']')
}

// sectionPart reads nz-number *("." nz-number), leaving a "." that is
// followed by a section-text.
func (d *Decoder) sectionPart() ([]int, error) {
	var part []int
	for {
		if d.peek() == '0' {
			return nil, errSyntax("part number 0")
		}
		n, err := d.nzNumber("part number")
		if err != nil {
			return nil, err
		}
		part = append(part, int(n))
		if d.peek() != '.' || d.pos+1 >= len(d.line) || !isDigit(d.line[d.pos+1]) {
			return part, nil
		}
		d.pos++
	}
}

// sectionBinary reads "[" [section-part] "]".
func (d *Decoder) sectionBinary() ([]int, error) {
	if err := d.expect('['); err != nil {
		return nil, err
	}
	var part []int
	if !d.maybe(']') {
		var err error
		if part, err = d.sectionPart(); err != nil {
			return nil, err
		}
		if err := d.expect(']'); err != nil {
			return nil, err
		}
	}
	if part == nil {
		part = []int{}
	}
	return part, nil
}

// headerList reads "(" header-fld-name *(SP header-fld-name) ")".
func (d *Decoder) headerList() ([]string, error) {
	if err := d.expect('('); err != nil {
		return nil, err
	}
	var names []string
	for {
		n, err := d.astring("header field name")
		if err != nil {
			return nil, err
		}
		names = append(names, n)
		if d.maybe(')') {
			return names, nil
		}
		if err := d.sp(); err != nil {
			return nil, err
		}
	}
}

// partial reads an optional "<" number64 "." nz-number64 ">".
func (d *Decoder) partial() (*imap.SectionPartial, error) {
	if !d.maybe('<') {
		return nil, nil
	}
	off, err := d.number64("partial offset")
	if err != nil {
		return nil, err
	}
	if err := d.expect('.'); err != nil {
		return nil, err
	}
	size, err := d.number64("partial size")
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, errSyntax("partial size must not be 0")
	}
	if err := d.expect('>'); err != nil {
		return nil, err
	}
	return &imap.SectionPartial{Offset: off, Size: size}, nil
}

// store reads STORE sequence-set [SP "(" UNCHANGEDSINCE SP
// mod-sequence-valzer ")"] SP (["+" / "-"] "FLAGS" [".SILENT"]) SP
// (flag-list / (flag *(SP flag))).
func (d *Decoder) store(cmd *Command) error {
	if err := d.sp(); err != nil {
		return err
	}
	set, err := d.numSet(cmd.UID)
	if err != nil {
		return err
	}
	a := &StoreArgs{NumSet: set}
	cmd.Args = a
	if err := d.sp(); err != nil {
		return err
	}
	if d.maybe('(') {
		for {
			name, err := d.keyword("STORE modifier")
			if err != nil {
				return err
			}
			if name != "UNCHANGEDSINCE" {
				return errSyntax("unknown STORE modifier %s", name)
			}
			if err := d.sp(); err != nil {
				return err
			}
			if a.Options.UnchangedSince, err = d.modSeq(true); err != nil {
				return err
			}
			a.HasUnchangedSince = true
			cmd.CondStore = true
			if d.maybe(')') {
				break
			}
			if err := d.sp(); err != nil {
				return err
			}
		}
		if err := d.sp(); err != nil {
			return err
		}
	}
	switch {
	case d.maybe('+'):
		a.Flags.Op = imap.StoreFlagsAdd
	case d.maybe('-'):
		a.Flags.Op = imap.StoreFlagsDel
	default:
		a.Flags.Op = imap.StoreFlagsSet
	}
	switch item := d.itemName(); item {
	case "FLAGS":
	case "FLAGS.SILENT":
		a.Flags.Silent = true
	case "":
		return d.missing("FLAGS")
	default:
		return errSyntax("unknown STORE item %s", item)
	}
	if err := d.sp(); err != nil {
		return err
	}
	if d.peek() == '(' {
		a.Flags.Flags, err = d.flagList()
		return err
	}
	a.Flags.Flags = []imap.Flag{}
	for {
		f, err := d.flag()
		if err != nil {
			return err
		}
		a.Flags.Flags = append(a.Flags.Flags, f)
		if !d.maybe(' ') {
			return nil
		}
	}
}
