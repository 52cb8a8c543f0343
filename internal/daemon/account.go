package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/incoming"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// accountMeta is DATA/accounts/ID/account.json: what is needed to log in
// (also offline) before the store can be opened. The wrapped secret is
// ciphertext under the password-derived KEK.
type accountMeta struct {
	Address       string                   `json:"address"`
	Login         string                   `json:"login"`
	ProviderURL   string                   `json:"provider_url"`
	Provider      *providerclient.Provider `json:"provider"`
	KDF           seal.KDFParams           `json:"kdf"`
	WrappedSecret []byte                   `json:"wrapped_secret"`
	// LocalWrap is the storage secret wrapped under the local token's
	// key (see local.go).
	LocalWrap []byte `json:"local_wrap,omitempty"`
}

// Account is a logged-in account: its provider session, its unlocked
// local store and its sync engine.
type Account struct {
	Address  string
	Login    string
	Docs     *docsync.Engine
	Mail     *mailstore.Store
	Contacts *contactkeys.Manager
	Incoming *incoming.Processor
	Outbox   *outbox.Outbox

	discovery *outbox.Discovery

	d      *Daemon
	dir    string
	meta   accountMeta
	client *providerclient.Client
	keys   *seal.Keys
	store  *localstore.Store
	log    *slog.Logger

	mu         sync.Mutex
	online     bool      // logged in at the provider (not an offline unlock)
	expires    time.Time // of the provider session
	localToken string
	cancel     context.CancelFunc
	stopped    chan struct{}
}

// SplitAddress splits user@domain.
func SplitAddress(address string) (login, domain string, err error) {
	address = strings.ToLower(strings.TrimSpace(address))
	login, domain, ok := strings.Cut(address, "@")
	if !ok || login == "" || domain == "" || strings.ContainsAny(domain, "@/ ") {
		return "", "", fmt.Errorf("%q is not an address like user@example.org", address)
	}
	return login, domain, nil
}

func accountDir(data, address string) string {
	sum := sha256.Sum256([]byte(address))
	return filepath.Join(data, "accounts", hex.EncodeToString(sum[:12]))
}

func readMeta(dir string) (*accountMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "account.json"))
	if err != nil {
		return nil, err
	}
	var m accountMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("account.json: %w", err)
	}
	return &m, nil
}

// writeMeta replaces account.json atomically.
func writeMeta(dir string, m *accountMeta) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "account.json.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "account.json"))
}

// open unlocks the local store with the storage secret and makes the
// sync engine; it does not start syncing.
func (d *Daemon) openAccount(dir string, meta *accountMeta, c *providerclient.Client, secret []byte, online bool) (*Account, error) {
	k, err := seal.DeriveKeys(secret)
	if err != nil {
		return nil, err
	}
	st, err := localstore.Open(filepath.Join(dir, "store.db"), k)
	if err != nil {
		return nil, err
	}
	log := d.log.With("account", meta.Address)
	// After anything but a clean close (a crash, or an older bitmaskd that
	// wrote the store without keeping its indexes), rebuild them.
	clean, err := st.TakeCleanMark()
	if err == nil && !clean {
		log.Info("the local store was not closed cleanly; its indexes are rebuilt from the documents")
		err = docsync.ForgetIndexes(st)
		if err == nil {
			err = mailstore.Reconcile(st)
		}
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &Account{
		Address: meta.Address, Login: meta.Login,
		d: d, dir: dir, meta: *meta, client: c, keys: k, store: st, log: log, online: online,
	}
	a.Docs = docsync.New(st, c, k, meta.Address, log)
	// Keys are looked up on every send and every incoming page: found by
	// an index, not by reading every document (mail included).
	if err := a.Docs.IndexTypes(docTypeOwnKey, contactkeys.DocType); err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// start runs the sync engine in the background until stop.
func (a *Account) start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.cancel, a.stopped = cancel, make(chan struct{})
	stopped := a.stopped
	a.mu.Unlock()
	wake := make(chan struct{}, 1)
	var seen atomic.Uint64
	a.Docs.OnEvent(func(ev providerapi.Event) {
		if ev.Incoming > seen.Load() {
			seen.Store(ev.Incoming)
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); a.Outbox.Run(ctx) }()
	go func() { defer wg.Done(); a.renewLoop(ctx) }()
	go func() { defer wg.Done(); a.Docs.Run(ctx, a.d.cfg.SyncInterval) }()
	go func() { defer wg.Done(); a.Incoming.Run(ctx, wake) }()
	go func() { wg.Wait(); close(stopped) }()
}

// relay submits through the provider's submission service, verified
// against the pinned CA, with the session token.
func (a *Account) relay() outbox.Relay {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.meta.Provider.CAPEM)
	addr := a.meta.Provider.JSON.Submission
	host, _, _ := net.SplitHostPort(addr)
	var r outbox.Relay = &outbox.SMTPRelay{
		Addr:  addr,
		TLS:   &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12},
		Login: a.Login,
		Token: a.client.Token,
	}
	if a.d.cfg.WrapRelay != nil {
		r = a.d.cfg.WrapRelay(r)
	}
	return r
}

// Enqueue commits a message to the outbox (smtpd.Account).
func (a *Account) Enqueue(from string, rcpts []string, raw []byte) error {
	_, err := a.Outbox.Enqueue(from, rcpts, raw)
	return err
}

// ownEntities are the account's own keys, parsed, newest first (old
// ones stay for decrypting old mail).
func (a *Account) ownEntities() (openpgp.EntityList, error) {
	ks, err := a.OwnKeys()
	if err != nil {
		return nil, err
	}
	var out openpgp.EntityList
	for _, k := range ks {
		e, err := pgpkey.ReadArmored(k.Private)
		if err != nil {
			a.log.Warn("an own key does not parse", "fingerprint", k.Fingerprint, "err", err)
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// renewLoop renews the provider session when half of its life is gone,
// so a daemon that runs for weeks keeps syncing without the password.
func (a *Account) renewLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		online, expires := a.online, a.expires
		a.mu.Unlock()
		wait := time.Hour
		if online && !expires.IsZero() {
			wait = max(time.Until(expires)/2, time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if online {
			if _, err := a.RotateKeyIfExpiring(ctx, a.rotationWindow()); err != nil {
				a.log.Warn("key rotation", "err", err)
			}
		}
		if !online || expires.IsZero() || time.Until(expires) > wait {
			continue
		}
		exp, err := a.client.Renew(ctx)
		if err != nil {
			if providerclient.IsCode(err, providerapi.CodeUnauthorized) {
				// The session is gone (expired while we slept, or
				// ended by a password change): only a login helps.
				a.log.Warn("provider session ended; log in again to sync")
				a.mu.Lock()
				a.online = false
				a.mu.Unlock()
				continue
			}
			a.log.Info("session renewal failed, will retry", "err", err)
			continue
		}
		a.mu.Lock()
		a.expires = exp
		a.mu.Unlock()
		if err := a.saveSession(a.client.Token(), exp); err != nil {
			a.log.Warn("saving the renewed session", "err", err)
		}
	}
}

// finishOpen runs after the store is open and (when online) synced:
// the local token, the provider session kept for a later unlock, the
// mail store, and the account's key.
func (a *Account) finishOpen(ctx context.Context, secret []byte, needKey bool) error {
	if err := a.ensureLocalToken(secret); err != nil {
		return err
	}
	if a.Online() {
		if err := a.saveSession(a.client.Token(), a.expires); err != nil {
			return err
		}
	}
	ms, err := mailstore.Open(a.Docs, a.store, a.keys, a.d.cfg.Indexer, a.log)
	if err != nil {
		return err
	}
	a.Mail = ms
	a.Contacts = contactkeys.New(a.Docs, a.keys)
	a.Incoming = &incoming.Processor{
		Queue: a.client, Mail: ms, Keys: a.Contacts, Own: a.ownEntities,
		DocID: &a.keys.DocID, Log: a.log,
		Address: a.meta.Address, Domain: a.meta.Provider.JSON.Domain,
	}
	a.discovery = &outbox.Discovery{
		Keys: a.Contacts, ProviderDomain: a.meta.Provider.JSON.Domain, WKD: a.d.cfg.WKD,
		Nicknym: func(ctx context.Context, addr string) (string, error) {
			kr, err := a.client.LookupKey(ctx, addr)
			if err != nil {
				return "", err
			}
			return kr.OpenPGP, nil
		},
	}
	a.Incoming.Find = a.discovery.Find
	a.Outbox = outbox.New(outbox.Config{
		Store: a.store, Mail: ms, Address: a.Address, Log: a.log,
		Relay:     a.relay(),
		Keys:      a.discovery,
		Signer:    a.CurrentKey,
		RetryBase: a.d.cfg.OutboxRetry,
	})
	if needKey {
		if err := a.ensureKey(ctx); err != nil {
			return err
		}
		if _, err := a.RotateKeyIfExpiring(ctx, a.rotationWindow()); err != nil {
			a.log.Warn("key rotation", "err", err)
		}
	}
	return nil
}

// stop ends syncing and closes the store.
func (a *Account) stop() error {
	a.mu.Lock()
	cancel, stopped := a.cancel, a.stopped
	a.mu.Unlock()
	if cancel != nil {
		// Let a sync in flight finish and push what is local (briefly),
		// so a change the provider took is recorded as taken here too.
		sctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.Docs.Sync(sctx); err != nil {
			a.log.Info("last sync before stopping failed; changes stay queued locally", "err", err)
		}
		done()
		cancel()
		<-stopped
	}
	if a.Mail != nil {
		a.Mail.Close()
	}
	if err := a.store.MarkClean(); err != nil {
		a.log.Warn("marking the local store closed cleanly", "err", err)
	}
	return a.store.Close()
}

// Online reports whether the account holds a provider session.
func (a *Account) Online() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.online
}

// StorePath is the local store file.
func (a *Account) StorePath() string { return a.store.Path() }

// Store is the account's local encrypted store.
func (a *Account) Store() *localstore.Store { return a.store }

// Keys are the keys derived from the storage secret.
func (a *Account) Keys() *seal.Keys { return a.keys }

// Client is the provider API client.
func (a *Account) Client() *providerclient.Client { return a.client }

// --- the account's own OpenPGP keys, kept as documents

const docTypeOwnKey = "openpgp-own-key"

// KeyDoc is the body of a document that holds one of the user's own keys.
type KeyDoc struct {
	Type        string    `json:"type"`
	Address     string    `json:"address"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
	Added       time.Time `json:"added,omitzero"` // when this device made it (orders keys made within one second)
	Private     string    `json:"private"`        // armored
}

// OwnKeys returns the user's own keys, newest first.
func (a *Account) OwnKeys() ([]KeyDoc, error) {
	var out []KeyDoc
	err := a.Docs.ForEachType(docTypeOwnKey, func(d *docsync.Doc) error {
		var k KeyDoc
		if json.Unmarshal(d.Body, &k) == nil && k.Type == docTypeOwnKey {
			out = append(out, k)
		}
		return nil
	})
	newer := func(a, b KeyDoc) bool {
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		return a.Added.After(b.Added)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && newer(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, err
}

// CurrentKey is the user's newest key, parsed.
func (a *Account) CurrentKey() (*openpgp.Entity, error) {
	ks, err := a.OwnKeys()
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, pgpkey.ErrNoKey
	}
	return pgpkey.ReadArmored(ks[0].Private)
}

// ensureKey makes, stores and publishes a key when the account has none
// (after signup, or to finish a signup that was interrupted).
func (a *Account) ensureKey(ctx context.Context) error {
	e, err := a.CurrentKey()
	if errors.Is(err, pgpkey.ErrNoKey) {
		e, err = pgpkey.Generate(a.Address, a.d.cfg.KeyLifetime, time.Now())
		if err != nil {
			return err
		}
		if err := a.storeOwnKey(e); err != nil {
			return err
		}
		if err := a.Docs.Sync(ctx); err != nil {
			return fmt.Errorf("syncing the new key: %w", err)
		}
		a.log.Info("generated OpenPGP key", "fingerprint", pgpkey.Fingerprint(e))
	} else if err != nil {
		return err
	}
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		return err
	}
	if err := a.client.PublishKey(ctx, pub); err != nil {
		return fmt.Errorf("publishing the key: %w", err)
	}
	return nil
}

// RotateKeyIfExpiring replaces the account's key when it expires within
// before (or has no expiry information): a new key is made, kept as a
// document (so every device gets it), and published. Old secret keys stay
// for decrypting old mail. It reports whether it rotated.
func (a *Account) RotateKeyIfExpiring(ctx context.Context, before time.Duration) (bool, error) {
	ks, err := a.OwnKeys()
	if err != nil || len(ks) == 0 {
		return false, err
	}
	if exp := ks[0].Expires; exp.IsZero() || time.Until(exp) > before {
		return false, nil
	}
	e, err := pgpkey.Generate(a.Address, a.d.cfg.KeyLifetime, time.Now())
	if err != nil {
		return false, err
	}
	if err := a.storeOwnKey(e); err != nil {
		return false, err
	}
	if err := a.Docs.Sync(ctx); err != nil {
		a.log.Info("new key kept locally; it syncs when the provider is back", "err", err)
	}
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		return true, err
	}
	if err := a.client.PublishKey(ctx, pub); err != nil {
		return true, fmt.Errorf("publishing the new key: %w", err)
	}
	a.log.Info("rotated the OpenPGP key before it expires", "fingerprint", pgpkey.Fingerprint(e), "old", ks[0].Fingerprint)
	return true, nil
}

// rotationWindow is how long before expiry a key is replaced: 30 days,
// or a quarter of the key's lifetime when that is shorter.
func (a *Account) rotationWindow() time.Duration {
	life := a.d.cfg.KeyLifetime
	if life <= 0 {
		life = pgpkey.DefaultLifetime
	}
	return min(30*24*time.Hour, life/4)
}

func (a *Account) storeOwnKey(e *openpgp.Entity) error {
	priv, err := pgpkey.ArmorPrivate(e)
	if err != nil {
		return err
	}
	fpr := pgpkey.Fingerprint(e)
	body, err := json.Marshal(KeyDoc{
		Type: docTypeOwnKey, Address: a.Address, Fingerprint: fpr,
		Created: e.PrimaryKey.CreationTime.UTC(), Expires: pgpkey.Expires(e).UTC(), Added: time.Now().UTC(), Private: priv,
	})
	if err != nil {
		return err
	}
	return a.Docs.Put(seal.DocID(&a.keys.DocID, "own-key:"+fpr), body)
}
