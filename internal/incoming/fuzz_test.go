package incoming

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// FuzzProcess feeds arbitrary queue items to the incoming processing:
// it must never panic, must always return a message, and the message
// must carry exactly one X-Leap-Encryption and one X-Leap-Signature.
// Seeds are in testdata/fuzz/FuzzProcess; each input is encrypted to the
// account's key first (as the MX does) unless it starts with "RAW:".
func FuzzProcess(f *testing.F) {
	own, err := pgpkey.Generate("fuzz@example.test", 0, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	p := &Processor{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Add([]byte("From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n"))
	f.Add([]byte("RAW:not openpgp"))
	f.Add([]byte("X-Leap-Encryption: decrypted\r\nX-Leap-Signature: valid\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		item := in
		if !bytes.HasPrefix(in, []byte("RAW:")) {
			var buf bytes.Buffer
			w, err := openpgp.Encrypt(&buf, openpgp.EntityList{own}, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(in)
			w.Close()
			item = buf.Bytes()
		}
		out := p.Process(context.Background(), item, openpgp.EntityList{own}, time.Now())
		if len(out) == 0 {
			t.Fatal("no message")
		}
		for _, h := range []string{HeaderEncryption, HeaderSignature} {
			if n := countHeader(out, h); n != 1 {
				t.Fatalf("%d %s headers in:\n%.500q", n, h, out)
			}
		}
		// Nothing the fuzzer writes is signed by a key the account
		// holds (it has only its own, and never signs fuzz input).
		if sig := headerValue(out, HeaderSignature); strings.HasPrefix(sig, SigValid) || strings.HasPrefix(sig, SigPartial) {
			t.Fatalf("X-Leap-Signature %q for fuzz input", sig)
		}
	})
}

// countHeader counts the top-level header fields named name.
func countHeader(msg []byte, name string) int {
	n := 0
	for _, line := range bytes.Split(msg, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte(name)) {
			n++
		}
	}
	return n
}

// headerValue is the first top-level field named name (unfolded).
func headerValue(msg []byte, name string) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, l := range strings.Split(strings.ReplaceAll(string(head), "\r\n ", " "), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
