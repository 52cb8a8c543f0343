package imapproto

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParseCommand feeds any bytes to the Decoder: it must not panic,
// must make progress on every command (no hang), must keep to its
// limits, and every ParseError must carry a tag.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"a NOOP\r\n",
		"a LOGIN {3}\r\njoe {6+}\r\nsecret\r\n",
		"a AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=\r\n",
		"a ID (\"name\" \"x\" \"version\" NIL)\r\n",
		"a SELECT INBOX (QRESYNC (1 2 1:5 (1,3 2,4)))\r\n",
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% \"x/*\") RETURN (CHILDREN STATUS (MESSAGES))\r\n",
		"a LIST \"\" !#$&'+,-.0123456789:;<=>?@^_|[}%*\r\n",
		"a APPEND x (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5+}\r\nhello UTF8 (~{3}\r\na\x00b)\r\n",
		"a APPEND x {99999}\r\n",
		"a UID SEARCH RETURN (MIN SAVE) CHARSET UTF-8 OR (FROM a) NOT SINCE 1-Jan-2000 MODSEQ \"/flags/\\\\seen\" all 5\r\n",
		"a FETCH 1:* (BODY.PEEK[1.HEADER.FIELDS (From)]<0.10> BINARY[2] RFC822) (CHANGEDSINCE 5)\r\n",
		"a STORE $ (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)\r\n",
		"a UID MOVE 1,2:4 Trash\r\nb UID EXPUNGE 1:*\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxLine: 300, MaxLiteral: 200, MaxAppend: 500, MaxAppendTotal: 800}
		r := bytes.NewReader(data)
		br := bufio.NewReaderSize(r, 16)
		conts := 0
		d := NewDecoder(br, lim, func() error { conts++; return nil })
		d.SetUTF8(len(data)%2 == 1)
		left := len(data)
		for i := 0; ; i++ {
			cmd, err := d.ReadCommand()
			now := r.Len() + br.Buffered()
			if err == nil || errors.As(err, new(*ParseError)) {
				if now >= left {
					t.Fatalf("command %d read nothing", i)
				}
			}
			left = now
			if cap(d.line) > 2*lim.MaxLine+64 {
				t.Fatalf("line buffer of %d bytes", cap(d.line))
			}
			var pe *ParseError
			switch {
			case err == nil:
				if cmd.Tag == "" || cmd.Name == "" {
					t.Fatalf("command without a tag or a name: %+v", cmd)
				}
				checkArgs(t, cmd, d.utf8)
			case errors.As(err, &pe):
				if pe.Tag == "" || pe.Text == "" {
					t.Fatalf("ParseError without tag or text: %+v", pe)
				}
			default:
				return
			}
		}
	})
}

// checkArgs checks what a command read from fuzz input holds.
func checkArgs(t *testing.T, cmd *Command, utf8Mode bool) {
	var names []string
	switch a := cmd.Args.(type) {
	case *SelectArgs:
		names = append(names, a.Mailbox)
	case *CreateArgs:
		names = append(names, a.Mailbox)
	case *MailboxArgs:
		names = append(names, a.Mailbox)
	case *RenameArgs:
		names = append(names, a.Mailbox, a.NewName)
	case *StatusArgs:
		names = append(names, a.Mailbox)
	case *CopyArgs:
		names = append(names, a.Dest)
		if a.NumSet == nil {
			t.Fatalf("COPY without a set")
		}
	case *AppendArgs:
		names = append(names, a.Mailbox)
		if len(a.Messages) == 0 && !a.TooBig {
			t.Fatalf("APPEND without a message")
		}
		var total int
		for _, m := range a.Messages {
			if len(m.Literal) > 500 {
				t.Fatalf("APPEND message of %d bytes", len(m.Literal))
			}
			total += len(m.Literal)
		}
		if total > 800 {
			t.Fatalf("APPEND messages of %d bytes", total)
		}
	case *FetchArgs:
		if a.NumSet == nil {
			t.Fatalf("FETCH without a set")
		}
	case *StoreArgs:
		if a.NumSet == nil {
			t.Fatalf("STORE without a set")
		}
	}
	for _, n := range names {
		if !utf8.ValidString(n) {
			t.Fatalf("mailbox name %q is not UTF-8 (UTF8=ACCEPT %v)", n, utf8Mode)
		}
	}
}
