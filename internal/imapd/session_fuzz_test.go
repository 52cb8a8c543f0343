package imapd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/fuzzconn"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

const fuzzTimeout = 20 * time.Second

// FuzzIMAPSession is a mail client that logs in, selects INBOX (three
// messages, one of them seen, and a fourth in Archive), then sends the
// fuzzer's bytes as its commands, then a NOOP, and closes its side. The
// server runs once per fuzzing process; each input gets a fresh account
// on the real mail store (local store, document engine, mail index) so
// that it starts from the same state. The server must not panic (go-imap
// recovers a panic and logs it: the log is watched), must answer only
// with well-formed responses, must close the connection once the input
// has ended, must release the account when the session is over, and must
// still serve the next client: login, SELECT INBOX and NOOP.
func FuzzIMAPSession(f *testing.F) {
	for _, s := range []string{
		"c FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From Subject)])\r\n",
		"c UID FETCH 1:* (BODY[] BODY[1] BODY[2.1.MIME] BODY[TEXT]<0.10> BINARY[1] BINARY.SIZE[1] RFC822.HEADER)\r\nd FETCH 2 (BODY[2.HEADER] BODY[2.TEXT] BODY[1.2] BODY[3.1.2.3])\r\n",
		"c SEARCH OR FROM x SUBJECT \"fwd\" NOT SEEN LARGER 10 BEFORE 1-Jan-2030 HEADER Message-ID example BODY hello TEXT b\r\nd UID SEARCH RETURN (MIN MAX COUNT SAVE) 1:* UNDELETED\r\ne FETCH $ (FLAGS)\r\n",
		"c STORE 1:2 +FLAGS (\\Deleted $Label)\r\nd EXPUNGE\r\ne UID STORE 1:* -FLAGS.SILENT (\\Seen)\r\nf UID EXPUNGE 3\r\n",
		"c COPY 1 Archive\r\nd UID MOVE 2:* Archive\r\ne STATUS Archive (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)\r\n",
		"c APPEND INBOX (\\Seen) {23}\r\nSubject: new\r\n\r\nbody\r\n\r\nd APPEND Archive \"01-Jan-2024 10:00:00 +0000\" {5}\r\nxxxxx\r\n",
		"c CREATE a/b\r\nd RENAME a/b c\r\ne LIST \"\" *\r\nf LIST (SUBSCRIBED) \"\" * RETURN (CHILDREN STATUS (MESSAGES))\r\ng DELETE c\r\nh SUBSCRIBE INBOX\r\ni LSUB \"\" *\r\n",
		"c IDLE\r\nDONE\r\nd NAMESPACE\r\ne ENABLE IMAP4rev2\r\nf CHECK\r\ng UNSELECT\r\nh EXAMINE Archive\r\ni CLOSE\r\n",
		"c CAPABILITY\r\nd UNAUTHENTICATE\r\ne LOGIN alice@bitmask.test local-token-0123456789\r\nf SELECT INBOX (CONDSTORE)\r\ng LOGOUT\r\n",
		"c FETCH 1:* BODY[]<4294967295.4294967295>\r\nd FETCH 4294967295:1 FLAGS\r\ne SEARCH UID 1:4294967295,*\r\n",
		"c APPEND INBOX {99999999999}\r\n",
		"c STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"c SEARCH CHARSET UTF-8 SUBJECT {4+}\r\ncafé\r\n",
		"{}()[]\"\\\r\n*\r\n+\r\n",
	} {
		f.Add([]byte(s))
	}

	var logs fuzzconn.PanicLog
	secret, err := seal.NewStorageSecret()
	if err != nil {
		f.Fatal(err)
	}
	keys, err := seal.DeriveKeys(secret)
	if err != nil {
		f.Fatal(err)
	}
	var mu sync.Mutex
	var current Mailstore
	srv := New(AuthFunc(func(user, pass string) (Mailstore, error) {
		mu.Lock()
		defer mu.Unlock()
		if user == testUser && pass == testToken && current != nil {
			return current, nil
		}
		return nil, errors.New("bad credentials")
	}), Config{Logger: logs.Logger()})
	srv.ownEventWait = 50 * time.Millisecond
	dial := fuzzconn.Serve(f, srv.Serve)
	const prefix = "a LOGIN " + testUser + " " + testToken + "\r\nb SELECT INBOX\r\n"
	template := newFuzzTemplate(f, keys, sampleMessages())

	f.Fuzz(func(t *testing.T, in []byte) {
		ms := fuzzAccount(t, keys, template)
		mu.Lock()
		current = ms
		mu.Unlock()

		input := append([]byte(prefix), in...)
		if !bytes.HasSuffix(input, []byte("\n")) {
			input = append(input, "\r\n"...)
		}
		input = append(input, "zz NOOP\r\n"...)
		tr, err := fuzzconn.Session(dial(t), input, fuzzTimeout)
		if p := logs.Take(); len(p) > 0 {
			t.Fatalf("the server panicked:\n%s", strings.Join(p, "\n"))
		}
		if err != nil {
			t.Fatal(err)
		}
		tagged, err := fuzzconn.IMAPResponses(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(tr.Out, []byte("* OK")) && !tr.Reset {
			t.Fatalf("greeting: %q", tr.Out[:min(len(tr.Out), 100)])
		}
		if len(tagged) >= 2 && (!strings.HasPrefix(tagged[0], "a OK") || !strings.HasPrefix(tagged[1], "b OK")) {
			t.Fatalf("login and select: %q", tagged[:2])
		}

		// The session is over: it lets go of the account.
		for deadline := time.Now().Add(fuzzTimeout); ; time.Sleep(time.Millisecond) {
			srv.mu.Lock()
			n := len(srv.accounts)
			srv.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d accounts still held after the session ended", n)
			}
		}

		// The server still serves the account.
		pc := dial(t)
		tr, err = fuzzconn.Session(pc, []byte(prefix+"c NOOP\r\nd LOGOUT\r\n"), fuzzTimeout)
		if err != nil {
			t.Fatal(err)
		}
		tagged, err = fuzzconn.IMAPResponses(tr)
		if err != nil {
			t.Fatal(err)
		}
		if len(tagged) != 4 || !strings.HasPrefix(tagged[0], "a OK") || !strings.HasPrefix(tagged[1], "b OK") ||
			!strings.HasPrefix(tagged[2], "c OK") || !strings.HasPrefix(tagged[3], "d OK") {
			t.Fatalf("the next session: %q", tagged)
		}
		for deadline := time.Now().Add(fuzzTimeout); ; time.Sleep(time.Millisecond) {
			srv.mu.Lock()
			n := len(srv.accounts)
			srv.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d accounts still held after the probe", n)
			}
		}
	})
}

// newFuzzTemplate writes an account's files into a folder: INBOX with
// three messages (a plain one, seen; a forward with a nested message; a
// digest) and Archive with one. Each input gets a copy: writing it anew
// (with a sync per write) would take most of the time of an input.
func newFuzzTemplate(f *testing.F, keys *seal.Keys, msgs [][]byte) string {
	dir := f.TempDir()
	st, err := localstore.Open(filepath.Join(dir, "store.db"), keys)
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ms, err := mailstore.Open(docsync.New(st, nil, keys, testUser, log), st, keys, Indexer, log)
	if err != nil {
		st.Close()
		f.Fatal(err)
	}
	ctx := context.Background()
	date := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	for i, m := range []struct {
		mbox  string
		raw   []byte
		flags []string
	}{
		{"INBOX", msgs[1], []string{`\Seen`}},
		{"INBOX", msgs[2], nil},
		{"INBOX", msgs[3], []string{"$Label"}},
		{"Archive", msgs[10], nil},
	} {
		if _, _, err := ms.Append(ctx, m.mbox, m.raw, m.flags, date.Add(time.Duration(i)*time.Hour)); err != nil {
			f.Fatal(err)
		}
	}
	ms.Close()
	if err := st.Close(); err != nil {
		f.Fatal(err)
	}
	return dir
}

// fuzzAccount opens a copy of the template's account.
func fuzzAccount(t *testing.T, keys *seal.Keys, template string) *mailstore.Store {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(template)); err != nil {
		t.Fatal(err)
	}
	st, err := localstore.Open(filepath.Join(dir, "store.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ms, err := mailstore.Open(docsync.New(st, nil, keys, testUser, log), st, keys, Indexer, log)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close(); st.Close() })
	return ms
}
