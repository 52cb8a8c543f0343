package outbox

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// TestClientSignedMessageGoesOut: a message the mail client signed
// itself (PGP/MIME, not encrypted) to a recipient without a key is sent,
// signed again around the client's signature, with no key attached
// inside (it cannot go inside the client's signature); not bounced.
func TestClientSignedMessageGoesOut(t *testing.T) {
	a := newAccount(t)
	signer, err := pgpkey.Generate(sender, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	o := New(Config{
		Store: a.st, Mail: a.mail, Address: sender,
		Signer: func() (*openpgp.Entity, error) { return signer, nil },
		Keys:   keyFunc(func(string) (*openpgp.Entity, error) { return nil, ErrNoKey }),
		Relay: relayFunc(func(_ string, _ []string, msg []byte) error {
			got = msg
			return nil
		}),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	clientSigned, err := pgpmime.Sign(outgoing("lee@remote.test", "signed by the client"), signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enqueue(sender, []string{"lee@remote.test"}, clientSigned); err != nil {
		t.Fatal(err)
	}
	o.Flush(context.Background(), false)
	if got == nil {
		t.Fatal("not relayed")
	}
	if o.Pending() != 0 {
		t.Fatalf("%d pending", o.Pending())
	}
	res, err := pgpmime.Process(got, nil, openpgp.EntityList{signer}, time.Now())
	if err != nil || res.Signature != pgpmime.SigValid || len(res.SignatureOutside) != 0 {
		t.Fatalf("relayed copy: %v %s %q", err, res.Signature, res.SignatureOutside)
	}
	if msgs, _ := a.mail.Messages("INBOX"); len(msgs) != 0 {
		t.Fatalf("%d messages (a bounce?) in INBOX", len(msgs))
	}
}
