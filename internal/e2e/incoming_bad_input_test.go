package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestIncomingBadInput: malformed MIME, binary garbage, 8-bit headers, a
// 1 MB header, broken PGP blocks and a 30 MB message are stored and
// readable over IMAP, and the daemon keeps running.
func TestIncomingBadInput(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "oona")
	to := a.acct.Address
	cases := map[string][]byte{
		"malformed MIME": []byte("From: a@b.test\r\nSubject: bad mime\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--x\r\nbroken"),
		"binary garbage": append([]byte("Subject: garbage\r\n\r\n"), bytes.Repeat([]byte{0, 0xff, 0x80, 0x1b}, 1000)...),
		"8-bit headers":  []byte("From: \xe9t\xe9 <a@b.test>\r\nSubject: caf\xe9 \xff\xfe\r\n\r\nbody\r\n"),
		"1 MB header":    []byte("Subject: long\r\nX-Long: " + strings.Repeat("a", 1<<20) + "\r\n\r\nbody\r\n"),
		"broken PGP":     []byte("From: a@b.test\r\nSubject: broken pgp\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA+garbage==\r\n-----END PGP MESSAGE-----\r\n--b--\r\n"),
		"inline broken":  []byte("Subject: inline\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\ntext\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nnot base64 at all\r\n-----END PGP SIGNATURE-----\r\n"),
		"30 MB message":  append([]byte("Subject: thirty megabytes\r\n\r\n"), bytes.Repeat([]byte("0123456789012345678901234567890123456789012345678901234567890123456789\r\n"), 30<<20/72)...),
	}
	c := dialMX(t, p)
	for name, m := range cases {
		if err := c.SendMail("s@sender.test", []string{to}, bytes.NewReader(m)); err != nil {
			t.Fatalf("%s: MX refused: %v", name, err)
		}
	}
	c.Close()
	waitMessages(t, a, "INBOX", len(cases))
	got := fetchAll(t, a.imap(t, nil), "INBOX")
	if len(got) != len(cases) {
		t.Fatalf("%d messages, want %d", len(got), len(cases))
	}
	total := 0
	for _, m := range got {
		total += len(m)
		if header(m, "X-Leap-Encryption") == "" {
			t.Fatalf("a message without our header:\n%.300s", m)
		}
	}
	if total < 30<<20 {
		t.Fatalf("only %d bytes readable", total)
	}
	// Still serving.
	deliver(t, p, "s@sender.test", to, plainMessage("s@sender.test", to, "after", "still here"))
	waitMessages(t, a, "INBOX", len(cases)+1)
}
