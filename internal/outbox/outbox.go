// Package outbox is bitmaskd's durable, encrypted outbox (docs/design.md,
// "Mail", Out). A message the mail client submits is committed to the
// account's local encrypted store before the client hears 250; a
// background worker then makes one copy per recipient and relays it
// through the provider:
//
//   - a recipient whose key is found gets a PGP/MIME encrypted and signed
//     copy with protected headers (the real Subject inside);
//   - one without a key gets a PGP/MIME signed copy with an Autocrypt
//     header and the sender's key attached (both can be turned off);
//   - a message the client already encrypted passes through unchanged.
//
// Bcc recipients are not in any copy's headers, and their copies are
// encrypted with hidden recipient key IDs, so no copy reveals them.
// Offline, messages wait and are retried with backoff; a permanent
// failure (a 5xx from the relay, or a message of which no signed or
// encrypted copy can be made) becomes a bounce in INBOX. A crash at any
// point leaves a message in the outbox (sent again, at worst, to the
// recipients whose delivery was not yet recorded) or delivered, never
// lost.
package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/recovered"
	"github.com/bitmask-go/bitmask/pkg/autocrypt"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

const bucketOutbox = "outbox"

// Relay sends one copy through the provider. An *smtp.SMTPError with a
// 5xx code is a permanent failure; anything else is retried.
type Relay interface {
	Send(ctx context.Context, from string, to []string, msg []byte) error
}

// KeyFinder finds a recipient's key (local cache, nicknym, WKD:
// contactkeys.Discovery); ErrNoKey when there is none.
type KeyFinder interface {
	Find(ctx context.Context, address string) (*openpgp.Entity, error)
}

// ErrNoKey is what a KeyFinder returns when no key is found: the
// contact keys' own, which contactkeys.Discovery returns.
var ErrNoKey = contactkeys.ErrNoKey

// Config wires an outbox.
type Config struct {
	Store   *localstore.Store
	Mail    *mailstore.Store // bounces go to its INBOX
	Relay   Relay
	Keys    KeyFinder
	Signer  func() (*openpgp.Entity, error)
	Address string
	// NoAutocrypt and NoAttachKey turn off the Autocrypt header and the
	// attached key on copies that go out unencrypted.
	NoAutocrypt, NoAttachKey bool
	RetryBase                time.Duration // first retry delay (default 30s), doubling to an hour
	GiveUp                   time.Duration // then bounce (default 5 days)
	Log                      *slog.Logger
}

// item is an outbox entry, kept sealed in the local store.
type item struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`
	Bcc       []string  `json:"bcc,omitempty"` // envelope recipients not in To/Cc
	Pending   []string  `json:"pending"`       // recipients not yet delivered
	Raw       []byte    `json:"raw"`
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try"`
	LastError string    `json:"last_error,omitempty"`
	// Broken marks a message whose handling panicked: it is never tried
	// again, only its bounce is left to store (see setAside).
	Broken bool `json:"broken,omitempty"`
}

// Outbox is one account's outbox.
type Outbox struct {
	cfg  Config
	kick chan struct{}
	mu   sync.Mutex // one delivery pass at a time
	sent int
}

// New makes an outbox.
func New(cfg Config) *Outbox {
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = 5 * 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Outbox{cfg: cfg, kick: make(chan struct{}, 1)}
}

// Enqueue commits a message for rcpts to the outbox. When it returns
// nil, the message is on disk (encrypted) and will be delivered.
func (o *Outbox) Enqueue(from string, rcpts []string, raw []byte) (string, error) {
	if len(rcpts) == 0 {
		return "", errors.New("outbox: no recipients")
	}
	id, err := seal.RandomDocID()
	if err != nil {
		return "", err
	}
	visible := headerAddresses(raw, "To", "Cc")
	var bcc []string
	pending := make([]string, 0, len(rcpts))
	for _, r := range rcpts {
		r = strings.ToLower(r)
		if slices.Contains(pending, r) {
			continue
		}
		pending = append(pending, r)
		if !visible[r] {
			bcc = append(bcc, r)
		}
	}
	it := item{ID: id, From: from, Bcc: bcc, Pending: pending, Raw: raw, Created: time.Now().UTC(), NextTry: time.Now().UTC()}
	if err := o.put(&it); err != nil {
		return "", err
	}
	select {
	case o.kick <- struct{}{}:
	default:
	}
	return id, nil
}

func (o *Outbox) put(it *item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return o.cfg.Store.Update(func(tx *localstore.Tx) error { return tx.Put(bucketOutbox, it.ID, b) })
}

func (o *Outbox) items() ([]*item, error) {
	var out []*item
	err := o.cfg.Store.View(func(tx *localstore.Tx) error {
		return tx.ForEach(bucketOutbox, func(_ string, v []byte) error {
			var it item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("outbox: malformed entry: %w", err)
			}
			out = append(out, &it)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *item) int { return a.Created.Compare(b.Created) })
	return out, err
}

// Pending is the number of messages waiting.
func (o *Outbox) Pending() int {
	n := 0
	_ = o.cfg.Store.View(func(tx *localstore.Tx) error { n = tx.Count(bucketOutbox); return nil })
	return n
}

// Sent counts the copies relayed since start.
func (o *Outbox) Sent() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sent
}

// Run delivers in the background until ctx ends. At start it tries
// everything waiting, whatever its retry time (the daemon was down, the
// network may be back).
func (o *Outbox) Run(ctx context.Context) {
	force := true
	for {
		var next time.Time
		if p := recovered.Do(func() { next = o.Flush(ctx, force) }); p != nil {
			// Not in one message (deliver recovers those): wait a while.
			o.cfg.Log.Error("outbox: delivery pass failed", p.LogAttrs()...)
			next = time.Now().Add(time.Minute)
		}
		force = false
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 50*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-o.kick:
		case <-time.After(wait):
		}
	}
}

// Kick asks the worker to try now (e.g. when the provider is back).
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Flush tries every message that is due (every message with force) and
// returns when the next retry is due (zero if none waits).
func (o *Outbox) Flush(ctx context.Context, force bool) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	its, err := o.items()
	if err != nil {
		o.cfg.Log.Error("outbox: reading", "err", err)
		return time.Now().Add(time.Minute)
	}
	var next time.Time
	for _, it := range its {
		if ctx.Err() != nil {
			return next
		}
		if !force && time.Now().Before(it.NextTry) {
			if next.IsZero() || it.NextTry.Before(next) {
				next = it.NextTry
			}
			continue
		}
		if it.Broken {
			o.setAside(ctx, it)
		} else if p := recovered.Do(func() { o.deliver(ctx, it) }); p != nil {
			o.cfg.Log.Error("outbox: a message broke delivery; returning it to the sender", p.LogAttrs()...)
			o.setAside(ctx, it)
		}
		if len(it.Pending) > 0 && (next.IsZero() || it.NextTry.Before(next)) {
			next = it.NextTry
		}
	}
	return next
}

// deliver tries each pending recipient of it, recording progress.
func (o *Outbox) deliver(ctx context.Context, it *item) {
	var tempErr error
	var failed []string
	var perm []string
	refused := 0
	for _, g := range o.plan(ctx, it) {
		err := g.err
		if err == nil {
			err = o.cfg.Relay.Send(ctx, it.From, g.rcpts, g.msg)
		}
		var se *smtp.SMTPError
		var ref *refusal
		switch {
		case err == nil:
			o.sent += len(g.rcpts)
		case errors.As(err, &ref):
			// No copy will ever be made of it: like a 5xx, at once.
			perm = append(perm, strings.Join(g.rcpts, ", ")+": "+ref.Error())
			failed = append(failed, g.rcpts...)
			refused += len(g.rcpts)
		case errors.As(err, &se) && se.Code >= 500:
			perm = append(perm, fmt.Sprintf("%s: %d %s", strings.Join(g.rcpts, ", "), se.Code, se.Message))
			failed = append(failed, g.rcpts...)
		default:
			tempErr = err
			continue
		}
		it.Pending = slices.DeleteFunc(it.Pending, func(r string) bool { return slices.Contains(g.rcpts, r) })
		if len(it.Pending) > 0 {
			if err := o.put(it); err != nil {
				o.cfg.Log.Error("outbox: recording progress", "err", err)
			}
		}
	}
	if refused > 0 {
		o.cfg.Log.Info("outbox: no signed or encrypted copy can be made of a message; returning it to the sender", "recipients", refused)
	}
	if len(perm) > 0 {
		if err := o.bounce(ctx, it, failed, strings.Join(perm, "\r\n"), true); err != nil {
			// Without the report stored, the failure would go unseen:
			// keep those recipients, and try (and bounce) again later.
			o.cfg.Log.Error("outbox: storing a bounce; keeping the message", "err", err)
			it.Pending = append(it.Pending, failed...)
			tempErr = err
		}
	}
	if len(it.Pending) == 0 {
		if err := o.cfg.Store.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketOutbox, it.ID) }); err != nil {
			o.cfg.Log.Error("outbox: removing a sent message", "err", err)
		}
		return
	}
	it.Attempts++
	it.LastError = fmt.Sprint(tempErr)
	if time.Since(it.Created) > o.cfg.GiveUp {
		if err := o.bounce(ctx, it, it.Pending, "gave up after "+o.cfg.GiveUp.String()+": "+it.LastError, true); err == nil {
			_ = o.cfg.Store.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketOutbox, it.ID) })
			return
		}
	}
	delay := o.cfg.RetryBase << min(it.Attempts-1, 7)
	it.NextTry = time.Now().Add(min(delay, time.Hour)).UTC()
	// The error's text may name recipients (a key lookup, a relay's
	// reply): the log gets its kind only.
	o.cfg.Log.Info("outbox: delivery deferred", "recipients", len(it.Pending), "retry_in", time.Until(it.NextTry).Round(time.Second), "reason", errorKind(tempErr))
	if err := o.put(it); err != nil {
		o.cfg.Log.Error("outbox: recording a retry", "err", err)
	}
}

// whyBroken is what the bounce of a message whose handling panicked says.
const whyBroken = "bitmaskd could not process this message: internal error"

// setAside takes a message whose handling panicked (in planning, signing,
// encrypting or relaying) out of delivery: it is marked broken on disk
// first, so that neither a later pass nor the next start tries it again;
// the recipients it has not reached get a bounce in INBOX that says why,
// and then it leaves the outbox. If the bounce cannot be stored (with the
// message attached, then without), the mark stays and only the bounce is
// tried again later.
func (o *Outbox) setAside(ctx context.Context, it *item) {
	if !it.Broken {
		it.Broken = true
		if err := o.put(it); err != nil {
			o.cfg.Log.Error("outbox: marking a broken message", "err", err)
		}
	}
	var err error
	if len(it.Pending) > 0 {
		for _, attach := range []bool{true, false} {
			if p := recovered.Do(func() { err = o.bounce(ctx, it, it.Pending, whyBroken, attach) }); p != nil {
				o.cfg.Log.Error("outbox: making a bounce failed", p.LogAttrs()...)
				err = p
			}
			if err == nil {
				break
			}
		}
	}
	if err == nil {
		if err = o.cfg.Store.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketOutbox, it.ID) }); err == nil {
			it.Pending = nil
			return
		}
	}
	it.Attempts++
	it.LastError = err.Error()
	delay := o.cfg.RetryBase << min(it.Attempts-1, 7)
	it.NextTry = time.Now().Add(min(delay, time.Hour)).UTC()
	o.cfg.Log.Error("outbox: could not return a broken message; trying again later", "retry_in", time.Until(it.NextTry).Round(time.Second), "err", err)
	if err := o.put(it); err != nil {
		o.cfg.Log.Error("outbox: recording a retry", "err", err)
	}
}

// A copy is one message for some recipients.
type copyFor struct {
	rcpts []string
	msg   []byte
	err   error // could not be made now (retried), or never (a *refusal: bounced)
}

// whyRefused begins the bounce of a message of which pgpmime makes no copy.
const whyRefused = "bitmaskd could not encrypt or sign this message: "

// A refusal is why no copy can ever be made of a message: pgpmime refused
// the message itself (nested too deeply, a malformed header, ...), while
// the same keys make a copy of a plain message (see blame). Trying again
// would only refuse it again.
type refusal struct{ err error }

func (r *refusal) Error() string {
	return whyRefused + strings.Join(strings.Fields(r.err.Error()), " ")
}

func (r *refusal) Unwrap() error { return r.err }

// probe is a plain message that every pair of working keys makes a copy of.
var probe = []byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nprobe\r\n")

// blame is err, the failure of makeCopy on a message, as a *refusal when
// the message is at fault: when makeCopy makes a copy of a plain message
// with the same keys. Otherwise the keys are (the account's key cannot
// sign yet, a recipient's key cannot be used): that is retried, as a key
// may be renewed or found again.
func blame(err error, makeCopy func([]byte) ([]byte, error)) error {
	if err == nil {
		return nil
	}
	if _, perr := makeCopy(probe); perr == nil {
		return &refusal{err}
	}
	return err
}

// plan makes the copies of it for its pending recipients: one encrypted
// copy per recipient with a key, one signed copy per Bcc recipient
// without, and one signed copy shared by the other recipients without a
// key. A message the client encrypted itself goes as it is. A copy that
// pgpmime refuses to make of this message (and would make of a plain
// one) has a *refusal for error.
func (o *Outbox) plan(ctx context.Context, it *item) []copyFor {
	msg := pgpmime.StripHeaders(it.Raw, "Bcc")
	if pgpmime.IsEncrypted(msg) {
		return []copyFor{{rcpts: slices.Clone(it.Pending), msg: msg}}
	}
	signer, err := o.cfg.Signer()
	if err == nil && signer == nil {
		err = pgpmime.ErrNoSigner
	}
	if err != nil {
		return []copyFor{{rcpts: slices.Clone(it.Pending), err: fmt.Errorf("outbox: no signing key: %w", err)}}
	}
	var out []copyFor
	var shared []string
	var signed []byte
	var signedErr error
	signedCopy := func() ([]byte, error) {
		if signed == nil && signedErr == nil {
			sign := func(m []byte) ([]byte, error) { return o.signed(m, signer) }
			signed, signedErr = sign(msg)
			signedErr = blame(signedErr, sign)
		}
		return signed, signedErr
	}
	for _, rcpt := range it.Pending {
		bcc := slices.Contains(it.Bcc, rcpt)
		key, err := o.cfg.Keys.Find(ctx, rcpt)
		switch {
		case err == nil:
			encrypt := func(m []byte) ([]byte, error) {
				return pgpmime.EncryptSign(m, openpgp.EntityList{key, signer}, signer, &pgpmime.Options{HiddenRecipients: bcc})
			}
			c, err := encrypt(msg)
			out = append(out, copyFor{rcpts: []string{rcpt}, msg: c, err: blame(err, encrypt)})
		case errors.Is(err, ErrNoKey) && bcc:
			c, err := signedCopy()
			out = append(out, copyFor{rcpts: []string{rcpt}, msg: c, err: err})
		case errors.Is(err, ErrNoKey):
			shared = append(shared, rcpt)
		default:
			// Discovery failed for a reason other than "none": do not
			// send in the clear what might have been encrypted.
			out = append(out, copyFor{rcpts: []string{rcpt}, err: fmt.Errorf("outbox: looking up the key of %s: %w", rcpt, err)})
		}
	}
	if len(shared) > 0 {
		c, err := signedCopy()
		out = append(out, copyFor{rcpts: shared, msg: c, err: err})
	}
	return out
}

// signed is the copy for recipients without a key: the sender's key
// attached, PGP/MIME signed, with an Autocrypt header.
func (o *Outbox) signed(msg []byte, signer *openpgp.Entity) ([]byte, error) {
	if !o.cfg.NoAttachKey {
		pub, err := pgpkey.ArmorPublic(signer)
		if err != nil {
			return nil, err
		}
		withKey, err := pgpmime.AttachKey(msg, pub, "OpenPGP_"+pgpkey.Fingerprint(signer)[32:]+".asc")
		switch {
		case errors.Is(err, pgpmime.ErrProtected):
			// The mail client signed it itself: the key cannot go
			// inside that signature; the Autocrypt header still
			// carries it.
		case err != nil:
			return nil, err
		default:
			msg = withKey
		}
	}
	signed, err := pgpmime.Sign(msg, signer, nil)
	if err != nil {
		return nil, err
	}
	if !o.cfg.NoAutocrypt {
		h, err := autocrypt.New(o.cfg.Address, signer, false)
		if err == nil {
			signed = pgpmime.SetHeaders(pgpmime.StripHeaders(signed, "Autocrypt"), "Autocrypt", h.String())
		}
	}
	return signed, nil
}

// bounce puts a delivery failure report in INBOX, with the message
// attached when attach is set.
func (o *Outbox) bounce(ctx context.Context, it *item, rcpts []string, why string, attach bool) error {
	if o.cfg.Mail == nil {
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@localhost>\r\n")
	fmt.Fprintf(&b, "To: %s\r\n", it.From)
	fmt.Fprintf(&b, "Subject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"bitmask-bounce\"\r\n\r\n")
	fmt.Fprintf(&b, "--bitmask-bounce\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "Your message could not be delivered to:\r\n  %s\r\n\r\n%s\r\n", strings.Join(rcpts, "\r\n  "), why)
	if attach {
		fmt.Fprintf(&b, "--bitmask-bounce\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n")
		b.Write(it.Raw)
		fmt.Fprintf(&b, "\r\n")
	} else {
		fmt.Fprintf(&b, "\r\n(The message itself could not be attached.)\r\n")
	}
	fmt.Fprintf(&b, "--bitmask-bounce--\r\n")
	_, _, err := o.cfg.Mail.Append(ctx, "INBOX", b.Bytes(), nil, time.Now())
	return err
}

// headerAddresses is the set of addresses in the named header fields.
func headerAddresses(raw []byte, names ...string) map[string]bool {
	out := map[string]bool{}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return out
	}
	for _, n := range names {
		as, err := m.Header.AddressList(n)
		if err != nil {
			continue
		}
		for _, a := range as {
			out[strings.ToLower(a.Address)] = true
		}
	}
	return out
}

// errorKind describes a delivery error for the log without its text,
// which may hold addresses: the SMTP reply code, or the error's type.
func errorKind(err error) string {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &se):
		return fmt.Sprintf("smtp %d", se.Code)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled or timed out"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	for errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return fmt.Sprintf("%T", err)
}
