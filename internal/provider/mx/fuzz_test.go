package mx_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
)

// FuzzMXData sends arbitrary bytes as the message through a live MX to
// one valid recipient. Whatever comes in must get a clear SMTP reply; a
// 250 must mean an item that decrypts with the recipient's key to our
// two fields over the message, with no Authentication-Results field left
// that claims to be ours.
func FuzzMXData(f *testing.F) {
	for _, s := range []string{
		plainMsg,
		"",
		"\r\n",
		"no header at all",
		"Authentication-Results: " + hostname + "; spf=pass\r\n\r\nbody",
		"From: a@pass.example\r\nDKIM-Signature: v=1; a=ed25519-sha256; d=pass.example; s=sel; h=From; bh=; b=\r\n\r\n",
		".\r\n..\r\n.",
		"Subject: \xff\xfe\x00\r\n\tfolded\r\n\r\n\x00\x01\x02",
	} {
		f.Add([]byte(s))
	}
	w := newWorld(f, worldOptions{cfg: mx.Config{MaxSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)}})
	w.addUser("alice", true)
	key := w.keys["alice"]
	store := w.p.Store

	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		c, err := smtp.Dial(w.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.example"); err != nil {
			t.Fatal(err)
		}
		err = sendOn(c, "x@pass.example", []string{"alice@example.test"}, string(data))
		list, _, lerr := store.ListIncoming(ctx, "alice", 10)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				t.Fatalf("no SMTP reply: %v", err)
			}
			if len(list) != 0 {
				t.Fatalf("refused with %v, yet stored", err)
			}
			return
		}
		if len(list) != 1 {
			t.Fatalf("250, and %d items", len(list))
		}
		ct, err := store.Incoming(ctx, "alice", list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.DeleteIncoming(ctx, "alice", list[0].ID); err != nil {
			t.Fatal(err)
		}
		got, err := tryDecrypt(ct, key)
		if err != nil {
			t.Fatalf("stored item does not decrypt: %v", err)
		}
		_, _, rest := ours(t, got)
		// Independently of the MX's parser: no plain "Authentication-
		// Results: OURNAME..." field in the header section.
		sc := bufio.NewScanner(strings.NewReader(rest))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.TrimRight(line, "\r") == "" {
				break
			}
			name, value, ok := strings.Cut(line, ":")
			if ok && strings.EqualFold(name, "Authentication-Results") {
				id, _, _ := strings.Cut(strings.TrimSpace(value), ";")
				if id, _, _ = strings.Cut(id, " "); strings.EqualFold(id, hostname) {
					t.Fatalf("a forged Authentication-Results survived: %q", line)
				}
			}
		}
	})
}
