// Package ownkeys keeps the user's own OpenPGP keys: it makes them,
// keeps them as documents in the synced store (so every device of the
// account has the private keys), publishes the current public key to the
// provider's key directory (nicknym), and replaces the key before it
// expires.
//
// A key is made at signup (v4, Ed25519 primary for signatures, Cv25519
// subkey for encryption, pkg/pgpkey's lifetime unless configured). A
// login that finds no key after syncing (a signup interrupted between
// the account and its key) makes one. Before the current key expires
// (Window), a new one is made, stored and published; the old secret keys
// stay, newest first, so old mail still decrypts.
//
// The rotation loop (RunRotation) is separate from the provider session's
// renewal but keeps its pace: the daemon has it look when the session
// would be looked at, and only with a session, since a new key that
// cannot be published is of no use to senders.
package ownkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// DocType is the type of a document that holds one of the user's own
// keys. The document store indexes it, since the keys are read on every
// send and every incoming page.
const DocType = "openpgp-own-key"

// Key is the body of a document that holds one of the user's own keys.
type Key struct {
	Type        string    `json:"type"`
	Address     string    `json:"address"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
	Added       time.Time `json:"added,omitzero"` // when this device made it (orders keys made within one second)
	Private     string    `json:"private"`        // armored
}

// Directory is where the current public key is published: the
// provider's key directory (*providerclient.Client).
type Directory interface {
	PublishKey(ctx context.Context, armored string) error
}

// Config wires a Manager.
type Config struct {
	Docs    *docsync.Engine
	DocID   *[32]byte // derives the ids of the key documents (seal.Keys.DocID)
	Address string
	// Lifetime of a new key; zero means pgpkey.DefaultLifetime.
	Lifetime  time.Duration
	Directory Directory
	Log       *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// Manager is one account's own keys.
type Manager struct {
	cfg Config
	mu  sync.Mutex // one Ensure or rotation at a time: each may make a key
}

// New makes a manager over the account's documents.
func New(cfg Config) *Manager {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = pgpkey.DefaultLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg}
}

// List returns the user's own keys, newest first: by creation time,
// then by when a device made them (keys made within one second).
func (m *Manager) List() ([]Key, error) {
	var out []Key
	err := m.cfg.Docs.ForEachType(DocType, func(d *docsync.Doc) error {
		var k Key
		if json.Unmarshal(d.Body, &k) == nil && k.Type == DocType {
			out = append(out, k)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Key) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return b.Added.Compare(a.Added)
	})
	if err != nil {
		return out, fmt.Errorf("reading the own keys: %w", err)
	}
	return out, nil
}

// Current is the user's newest key, parsed; pgpkey.ErrNoKey when there
// is none.
func (m *Manager) Current() (*openpgp.Entity, error) {
	ks, err := m.List()
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, pgpkey.ErrNoKey
	}
	e, err := pgpkey.ReadArmored(ks[0].Private)
	if err != nil {
		return nil, fmt.Errorf("reading the current own key: %w", err)
	}
	return e, nil
}

// Entities are all the user's keys, parsed, newest first (old ones stay
// for decrypting old mail). A key that does not parse is logged and left
// out.
func (m *Manager) Entities() (openpgp.EntityList, error) {
	ks, err := m.List()
	if err != nil {
		return nil, err
	}
	var out openpgp.EntityList
	for _, k := range ks {
		e, err := pgpkey.ReadArmored(k.Private)
		if err != nil {
			m.cfg.Log.Warn("an own key does not parse", "fingerprint", k.Fingerprint, "err", err)
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Ensure makes, stores, syncs and publishes a key when the account has
// none (after signup, or to finish a signup that was interrupted), and
// publishes the current key again when it has one.
func (m *Manager) Ensure(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.Current()
	if errors.Is(err, pgpkey.ErrNoKey) {
		e, err = m.generate()
		if err != nil {
			return err
		}
		if err := m.cfg.Docs.Sync(ctx); err != nil {
			return fmt.Errorf("syncing the new key: %w", err)
		}
		m.cfg.Log.Info("generated OpenPGP key", "fingerprint", pgpkey.Fingerprint(e))
	} else if err != nil {
		return err
	}
	if err := m.publish(ctx, e); err != nil {
		return fmt.Errorf("publishing the key: %w", err)
	}
	return nil
}

// RotateIfExpiring replaces the current key when it expires within
// before (or has no expiry information): a new key is made, kept as a
// document (so every device gets it), and published. Old secret keys
// stay for decrypting old mail. It reports whether it rotated; a new key
// that could not be synced yet is kept locally and syncs later.
func (m *Manager) RotateIfExpiring(ctx context.Context, before time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks, err := m.List()
	if err != nil || len(ks) == 0 {
		return false, err
	}
	if exp := ks[0].Expires; exp.IsZero() || exp.Sub(m.cfg.Now()) > before {
		return false, nil
	}
	e, err := m.generate()
	if err != nil {
		return false, err
	}
	if err := m.cfg.Docs.Sync(ctx); err != nil {
		m.cfg.Log.Info("new key kept locally; it syncs when the provider is back", "err", err)
	}
	if err := m.publish(ctx, e); err != nil {
		return true, fmt.Errorf("publishing the new key: %w", err)
	}
	m.cfg.Log.Info("rotated the OpenPGP key before it expires", "fingerprint", pgpkey.Fingerprint(e), "old", ks[0].Fingerprint)
	return true, nil
}

// Window is how long before expiry a key is replaced: 30 days, or a
// quarter of a new key's lifetime when that is shorter.
func (m *Manager) Window() time.Duration {
	return min(30*24*time.Hour, m.cfg.Lifetime/4)
}

// Pace says, before each wait of the rotation loop, how long to wait and
// whether the look after the wait may rotate: a new key is published,
// which needs a provider session.
type Pace func() (wait time.Duration, online bool)

// RunRotation replaces the key before it expires (RotateIfExpiring with
// Window), looking after each wait that pace asks for, until ctx ends. A
// failed rotation is logged and tried again at the next look.
func (m *Manager) RunRotation(ctx context.Context, pace Pace) {
	for {
		wait, online := pace()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if !online {
			continue
		}
		if _, err := m.RotateIfExpiring(ctx, m.Window()); err != nil {
			m.cfg.Log.Warn("key rotation", "err", err)
		}
	}
}

// generate makes a new key and stores it as a document.
func (m *Manager) generate() (*openpgp.Entity, error) {
	e, err := pgpkey.Generate(m.cfg.Address, m.cfg.Lifetime, m.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	if err := m.store(e); err != nil {
		return nil, fmt.Errorf("storing the new key: %w", err)
	}
	return e, nil
}

// store keeps e (with its private part) in a document named by its
// fingerprint.
func (m *Manager) store(e *openpgp.Entity) error {
	priv, err := pgpkey.ArmorPrivate(e)
	if err != nil {
		return err
	}
	fpr := pgpkey.Fingerprint(e)
	body, err := json.Marshal(Key{
		Type: DocType, Address: m.cfg.Address, Fingerprint: fpr,
		Created: e.PrimaryKey.CreationTime.UTC(), Expires: pgpkey.Expires(e).UTC(), Added: m.cfg.Now().UTC(), Private: priv,
	})
	if err != nil {
		return err
	}
	return m.cfg.Docs.Put(seal.DocID(m.cfg.DocID, "own-key:"+fpr), body)
}

// publish sends e's public key to the directory.
func (m *Manager) publish(ctx context.Context, e *openpgp.Entity) error {
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		return err
	}
	return m.cfg.Directory.PublishKey(ctx, pub)
}
