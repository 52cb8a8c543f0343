// Package incoming takes the messages the provider's MX accepted for the
// account (each encrypted, headers and all, to the account's key) from
// the incoming queue into INBOX (docs/design.md, "Mail", In):
//
//  1. download an item and decrypt the MX's layer with the account's keys
//     (old ones too);
//  2. remove an inner PGP/MIME or inline PGP layer the sender put on, and
//     verify signatures against the sender's known key (pkg/pgpmime);
//  3. replace any X-Leap-Encryption / X-Leap-Signature the sender put in
//     with ours;
//  4. learn the sender's key from an Autocrypt header or an attached
//     application/pgp-keys part, at the lowest validation level;
//  5. store the message in INBOX under a document id derived from the item,
//     so two devices that take the same item end with one message;
//  6. sync, and only then delete the item from the provider.
//
// Nothing is dropped: a message that cannot be decrypted is kept, with a
// header that says why, and one that does not parse is kept as it came.
package incoming

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/pkg/autocrypt"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Queue is the provider's incoming queue; *client.Client is it.
type Queue interface {
	ListIncoming(ctx context.Context, limit int) (*providerapi.IncomingList, error)
	Incoming(ctx context.Context, id string) ([]byte, error)
	DeleteIncoming(ctx context.Context, id string) error
}

// Header names bitmaskd sets (LEAP's).
const (
	HeaderEncryption = "X-Leap-Encryption"
	HeaderSignature  = "X-Leap-Signature"
)

// maxPlaintext bounds what one item may decrypt to.
const maxPlaintext = mailstore.MaxMessageSize

// Processor moves one account's incoming queue into its mail store.
type Processor struct {
	Queue Queue
	Mail  *mailstore.Store
	Keys  *contactkeys.Manager
	// Own returns the account's own keys with their private parts, the
	// newest first.
	Own   func() (openpgp.EntityList, error)
	DocID *[32]byte
	Log   *slog.Logger
	// Find, if set, discovers a sender's key that is not in the cache
	// (nicknym for the provider's own users, WKD: contactkeys.Discovery),
	// so signatures of people the user never wrote to can be checked.
	Find func(ctx context.Context, address string) (*openpgp.Entity, error)
	// Address is the account's address; Domain the provider's domain,
	// which is also the authserv-id of its MX's Authentication-Results
	// field. For an address at Domain, only the key the provider's
	// directory serves can make a signature valid.
	Address, Domain string

	mu        sync.Mutex // one run at a time
	processed int
}

// Processed counts the items taken so far.
func (p *Processor) Processed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.processed
}

// Run processes the queue at start and whenever wake fires, until ctx
// ends; failures are retried with backoff.
func (p *Processor) Run(ctx context.Context, wake <-chan struct{}) {
	backoff := time.Duration(0)
	for {
		err := p.ProcessAll(ctx)
		if ctx.Err() != nil {
			return
		}
		var retry <-chan time.Time
		if err != nil {
			backoff = min(max(2*backoff, time.Second), time.Minute)
			p.Log.Info("incoming: will retry", "in", backoff, "err", err)
			retry = time.After(backoff)
		} else {
			backoff = 0
			retry = time.After(5 * time.Minute)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-retry:
		}
	}
}

// ProcessAll takes every item in the queue.
func (p *Processor) ProcessAll(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		list, err := p.Queue.ListIncoming(ctx, 100)
		if err != nil {
			return fmt.Errorf("incoming: list: %w", err)
		}
		if len(list.Items) == 0 {
			return nil
		}
		own, err := p.Own()
		if err != nil {
			return fmt.Errorf("incoming: reading the account's keys: %w", err)
		}
		var done []string
		var batch []mailstore.NewMessage
		var items [][]byte // as they arrived, to set aside one that breaks storing
		for _, it := range list.Items {
			data, err := p.Queue.Incoming(ctx, it.ID)
			if err != nil {
				return fmt.Errorf("incoming: download %s: %w", it.ID, err)
			}
			batch = append(batch, mailstore.NewMessage{
				ID: seal.DocID(p.DocID, "incoming:"+it.ID), Raw: fitToStore(p.safeProcess(ctx, data, own, it.Received), data, it.Received), Date: it.Received,
			})
			items = append(items, data)
			done = append(done, it.ID)
		}
		if err := p.store(ctx, batch, items); err != nil {
			return fmt.Errorf("incoming: store: %w", err)
		}
		// Acknowledge only what is durably at the provider as a
		// document: the sync pushes the blobs and documents first.
		if err := p.Mail.Sync(ctx); err != nil {
			return fmt.Errorf("incoming: sync before acknowledging: %w", err)
		}
		for _, id := range done {
			if err := p.Queue.DeleteIncoming(ctx, id); err != nil {
				return fmt.Errorf("incoming: delete %s: %w", id, err)
			}
			p.processed++
		}
		if !list.More && len(list.Items) < 100 {
			return nil
		}
	}
}

// testHookProcess, when set by a test, sees each item's plaintext before
// it is processed (to make one panic).
var testHookProcess func(data []byte)

// safeProcess is Process for the worker: a panic while processing one
// item is logged without content, and the item is kept as it arrived
// (still encrypted to the account's key, inside a note that says what
// happened) so that it is neither lost nor processed again at the next
// start.
func (p *Processor) safeProcess(ctx context.Context, data []byte, own openpgp.EntityList, received time.Time) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			p.Log.Error("incoming: processing an item panicked; keeping it as it arrived", "panic", panicText(r), "stack", string(debug.Stack()))
			out = keptAside(data, errInternal, received)
		}
	}()
	return p.Process(ctx, data, own, received)
}

// errInternal is the reason given for an item that broke processing.
var errInternal = errors.New("bitmaskd could not process this message (internal error)")

// panicText describes a recovered panic without the data it may carry:
// the runtime's own errors are kept (index out of range and the like),
// anything else only by type.
func panicText(r any) string {
	if re, ok := r.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("panic of type %T", r)
}

// store appends the batch to INBOX. Should storing panic (the indexer on
// some hostile structure), the items are stored one by one, and one that
// still panics is replaced by the item as it arrived, set aside.
func (p *Processor) store(ctx context.Context, batch []mailstore.NewMessage, items [][]byte) error {
	ok, err := p.appendSafe(ctx, batch)
	if ok {
		return err
	}
	for i := range batch {
		ok, err := p.appendSafe(ctx, batch[i:i+1])
		if !ok {
			batch[i].Raw = keptAside(items[i], errInternal, batch[i].Date)
			ok, err = p.appendSafe(ctx, batch[i:i+1])
			if !ok {
				return errors.New("storing an item panicked, also as it arrived")
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendSafe is AppendBatch with a panic recovered (ok false).
func (p *Processor) appendSafe(ctx context.Context, batch []mailstore.NewMessage) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.Log.Error("incoming: storing panicked", "panic", panicText(r), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	if testHookStore != nil {
		testHookStore(batch)
	}
	_, err = p.Mail.AppendBatch(ctx, "INBOX", batch)
	return true, err
}

// testHookStore, when set by a test, runs before each append.
var testHookStore func(batch []mailstore.NewMessage)

// Process turns one queue item into the message to store. It never
// fails: what cannot be decrypted or parsed is kept with a note.
//
// The order matters (docs/signatures.md): the signature is judged first,
// against keys known before this message arrived, and only then are the
// keys the message offers learned, so a key never vouches for the
// message that brought it.
func (p *Processor) Process(ctx context.Context, data []byte, own openpgp.EntityList, received time.Time) []byte {
	return fitToStore(p.process(ctx, data, own, received), data, received)
}

func (p *Processor) process(ctx context.Context, data []byte, own openpgp.EntityList, received time.Time) []byte {
	plain, err := decryptOuter(data, own)
	if err != nil {
		p.Log.Warn("incoming: cannot decrypt an item; keeping it as it came", "err", err)
		return keptAside(data, err, received)
	}
	// RFC 5322 allows CR only before LF. Mail clients differ on a lone
	// CR (some end the line there), so a sender could show them a field
	// or a MIME delimiter that this code would not see: make every
	// lone CR a line break for everyone.
	plain = normalizeCR(plain)
	if testHookProcess != nil {
		testHookProcess(plain)
	}
	signed := looksSigned(plain)
	ring, byFpr := p.signingKeys(ctx, authorOf(plain), own, signed)
	res, err := pgpmime.Process(plain, own, ring, time.Now())
	if err == nil && res != nil && res.Signature == pgpmime.SigUnknownKey {
		// Signed by none of the keys of the addresses the header
		// names: try every kept key, so that a signature by someone the
		// user knows is reported as theirs, not the author's.
		if wider, more := p.allContactKeys(ring, byFpr); len(wider) > len(ring) {
			if r2, err2 := pgpmime.Process(plain, own, wider, time.Now()); err2 == nil && r2 != nil {
				res, byFpr = r2, more
			}
		}
	}
	if err != nil || res == nil {
		p.Log.Info("incoming: message kept unprocessed", "err", err)
		return mark(plain, "false", verdict{status: SigUnknown, reason: "the message could not be processed"}.String())
	}
	// The author as the reader will see it: after protected headers
	// were applied. Keys for it were loaded from the outer header; when
	// a protected From differs, pgpmime only used it with a signature
	// bound to it, and the verdict below checks the binding again.
	a := authorOf(res.Message)
	v := p.signatureVerdict(res, a, byFpr)
	p.learnOffered(plain, res.Message, a, v)
	return mark(res.Message, encryptionStatus(res), v.String())
}

// mark removes every X-Leap-* field the sender put anywhere a client
// shows a header, and sets ours.
func mark(msg []byte, enc, sig string) []byte {
	return pgpmime.SetHeaders(pgpmime.StripNamePrefix(msg, "X-Leap-"), HeaderEncryption, enc, HeaderSignature, sig)
}

// offered is a key a message offers for its author.
type offered struct{ armored, source string }

// offeredKeys are the keys in msg's Autocrypt header and attachments.
func offeredKeys(msg []byte) []offered {
	var out []offered
	if h, err := autocrypt.FromMessage(msg); err == nil && h != nil {
		if e, err := h.Entity(); err == nil {
			if arm, err := pgpkey.ArmorPublic(e); err == nil {
				out = append(out, offered{arm, "autocrypt"})
			}
		}
	}
	for _, arm := range pgpmime.KeysFromMessage(msg) {
		out = append(out, offered{arm, "attachment"})
	}
	return out
}

// decryptOuter removes the MX's layer (binary or armored OpenPGP).
func decryptOuter(data []byte, own openpgp.EntityList) ([]byte, error) {
	if len(own) == 0 {
		return nil, errors.New("no private key")
	}
	r := io.Reader(bytes.NewReader(data))
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP MESSAGE-----")) {
		blk, err := armor.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		r = blk.Body
	}
	md, err := openpgp.ReadMessage(r, own, nil, &packet.Config{})
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxPlaintext+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxPlaintext {
		return nil, fmt.Errorf("decrypts to more than %d bytes", maxPlaintext)
	}
	return out, nil
}

// errTooLarge is the reason given for an item whose processed form is
// larger than the mail store takes.
var errTooLarge = fmt.Errorf("the message is larger than the %d bytes bitmaskd can keep", mailstore.MaxMessageSize)

// fitToStore makes sure one item never stops the queue by its size (a
// decompression bomb, or mail at the SMTP size limit that decrypts to
// more): a processed message too big for the store is kept as it
// arrived instead, and if even that is too big, replaced by a note that
// says so (the item then leaves the provider's queue like the others).
func fitToStore(out, data []byte, received time.Time) []byte {
	if len(out) <= mailstore.MaxMessageSize {
		return out
	}
	if aside := keptAside(data, errTooLarge, received); len(aside) <= mailstore.MaxMessageSize {
		return aside
	}
	return keptAside(nil, errTooLarge, received)
}

// keptAside wraps an item we could not open or process in a message that
// says so and carries the item, as it arrived, as an attachment, so it is
// never lost.
func keptAside(data []byte, why error, received time.Time) []byte {
	var b bytes.Buffer
	boundary := "bitmask-undecryptable"
	fmt.Fprintf(&b, "From: Bitmask <MAILER-DAEMON@localhost>\r\n")
	subject, text := "A message could not be decrypted", "Your provider accepted a message for you that none of your keys can decrypt"
	switch {
	case errors.Is(why, errInternal):
		subject, text = "A message could not be processed", "Your provider accepted a message for you that bitmaskd could not process"
	case errors.Is(why, errTooLarge):
		subject, text = "A message was too large to keep", "Your provider accepted a message for you that is too large for bitmaskd to keep"
	}
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", received.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "%s: failed; reason=%s\r\n", HeaderEncryption, quote(oneLine(why.Error())))
	fmt.Fprintf(&b, "%s: %s\r\n", HeaderSignature, SigNone)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary)
	if data == nil {
		fmt.Fprintf(&b, "%s:\r\n%s\r\n\r\nIt could not be kept, even as it arrived.\r\n", text, oneLine(why.Error()))
		fmt.Fprintf(&b, "--%s--\r\n", boundary)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "%s:\r\n%s\r\n\r\nThe message is attached as it arrived, encrypted to your key.\r\n", text, oneLine(why.Error()))
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pgp-encrypted\r\nContent-Disposition: attachment; filename=\"message.pgp\"\r\n\r\n", boundary)
	w, err := armor.Encode(&b, "PGP MESSAGE", nil)
	if err == nil {
		_, _ = w.Write(data)
		_ = w.Close()
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// looksSigned is a cheap test for a signature worth a key lookup.
func looksSigned(msg []byte) bool {
	return bytes.Contains(msg, []byte("application/pgp-signature")) ||
		bytes.Contains(msg, []byte("-----BEGIN PGP")) ||
		bytes.Contains(msg, []byte("application/pgp-encrypted"))
}
