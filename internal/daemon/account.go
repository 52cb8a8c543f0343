package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
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
	"github.com/bitmask-go/bitmask/internal/fulltext"
	"github.com/bitmask-go/bitmask/internal/incoming"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/ownkeys"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
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
// local store and sync engine, its mail, its keys (the contacts' and its
// own) and the workers that move mail in and out. openAccount sets every
// part; start runs the background work, stop ends it.
type Account struct {
	Address  string
	Login    string
	Docs     *docsync.Engine
	Mail     *mailstore.Store
	Index    *fulltext.Index // of Mail's text, for SEARCH BODY and TEXT; nil if it could not open
	Contacts *contactkeys.Manager
	Own      *ownkeys.Manager
	Incoming *incoming.Processor
	Outbox   *outbox.Outbox

	discovery *contactkeys.Discovery // of contacts' keys: cache, nicknym, WKD
	imapMail  *SearchableMail        // Mail and Index, one value for the account's life

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
		return nil, fmt.Errorf("reading account.json: %w", err)
	}
	var m accountMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("account.json: %w", err)
	}
	return &m, nil
}

// writeMeta replaces account.json atomically.
func writeMeta(dir string, m *accountMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding account.json: %w", err)
	}
	if err := replaceFile(dir, "account.json", b); err != nil {
		return fmt.Errorf("writing account.json: %w", err)
	}
	return nil
}

// replaceFile writes b to dir/name through a synced temporary file and a
// rename, so a crash leaves the old content or the new, never a mix.
func replaceFile(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, name+".tmp")
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
	return os.Rename(tmp, filepath.Join(dir, name))
}

// opening is what an account is opened from: its directory and
// account.json, a provider client, and the storage secret unwrapped by a
// login, a signup or the local token.
type opening struct {
	dir    string
	meta   *accountMeta
	client *providerclient.Client
	secret []byte
	// online is set after a signup or a login at the provider, whose
	// session ends at expires: the account syncs once before it opens,
	// and gets a key if it has none (or one about to expire). An offline
	// unlock resumes the provider session kept in the store instead.
	online  bool
	expires time.Time
	// onFirstSync, if set, is told of the sync engine before that first
	// sync (Status shows a login while it syncs).
	onFirstSync func(*docsync.Engine)
}

// openAccount opens an account: it unlocks the local store with the
// storage secret, syncs (when online), opens the mail store, wires the
// contacts' and own keys, the incoming processor and the outbox, keeps
// the local token and the provider session, and makes sure the account
// has a key (when online). Every part of the Account is set when it
// returns; it does not start the background work (start).
func (d *Daemon) openAccount(ctx context.Context, o opening) (*Account, error) {
	log := d.log.With("account", o.meta.Address)
	k, err := seal.DeriveKeys(o.secret)
	if err != nil {
		return nil, fmt.Errorf("deriving the account's keys: %w", err)
	}
	st, err := openStore(filepath.Join(o.dir, "store.db"), k, log)
	if err != nil {
		return nil, err
	}
	docs := docsync.New(st, o.client, k, o.meta.Address, log)
	// Keys are looked up on every send and every incoming page: found by
	// an index, not by reading every document (mail included).
	if err := docs.IndexTypes(ownkeys.DocType, contactkeys.DocType, mailstore.MailboxDocType); err != nil {
		st.Close() // not marked clean: the indexes are rebuilt next time
		return nil, fmt.Errorf("indexing the key documents: %w", err)
	}
	if o.online {
		if o.onFirstSync != nil {
			o.onFirstSync(docs)
		}
		if err := docs.Sync(ctx); err != nil {
			closeStore(st, log)
			return nil, fmt.Errorf("first sync: %w", err)
		}
	}
	ms, err := mailstore.Open(docs, st, k, d.cfg.Indexer, log)
	if err != nil {
		closeStore(st, log)
		return nil, fmt.Errorf("opening the mail store: %w", err)
	}
	// The full-text index catches up with the mail in the background.
	// Without it (it could not open) SEARCH scans, as before it.
	idx, err := fulltext.Open(ms, st, fulltext.Config{Log: log})
	if err != nil {
		log.Warn("the full-text index could not open; SEARCH reads every message", "err", err)
		idx = nil
	}
	a := d.assemble(o, log, k, st, docs, ms)
	a.Index = idx
	a.imapMail = &SearchableMail{Store: ms, index: idx}
	if err := a.settle(ctx, o); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

// openStore opens the local store and, after anything but a clean close
// (a crash, or an older bitmaskd that wrote the store without keeping its
// indexes), rebuilds its indexes from the documents.
func openStore(path string, k *seal.Keys, log *slog.Logger) (*localstore.Store, error) {
	st, err := localstore.Open(path, k)
	if err != nil {
		return nil, fmt.Errorf("opening the local store: %w", err)
	}
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
		return nil, fmt.Errorf("rebuilding the local store's indexes: %w", err)
	}
	return st, nil
}

// closeStore closes a store that was opened, marked as closed cleanly.
func closeStore(st *localstore.Store, log *slog.Logger) {
	if err := st.MarkClean(); err != nil {
		log.Warn("marking the local store closed cleanly", "err", err)
	}
	st.Close()
}

// assemble wires the account's parts over its open stores: the keys
// (contacts' and own), their discovery, the incoming processor and the
// outbox.
func (d *Daemon) assemble(o opening, log *slog.Logger, k *seal.Keys, st *localstore.Store, docs *docsync.Engine, ms *mailstore.Store) *Account {
	domain := o.meta.Provider.JSON.Domain
	contacts := contactkeys.New(docs, k)
	own := ownkeys.New(ownkeys.Config{
		Docs: docs, DocID: &k.DocID, Address: o.meta.Address,
		Lifetime: d.cfg.KeyLifetime, Directory: o.client, Log: log,
	})
	disc := &contactkeys.Discovery{
		Keys: contacts, ProviderDomain: domain, WKD: d.cfg.WKD,
		Nicknym: func(ctx context.Context, addr string) (string, error) {
			kr, err := o.client.LookupKey(ctx, addr)
			if err != nil {
				return "", err
			}
			return kr.OpenPGP, nil
		},
	}
	return &Account{
		Address: o.meta.Address, Login: o.meta.Login,
		Docs: docs, Mail: ms, Contacts: contacts, Own: own,
		Incoming: &incoming.Processor{
			Queue: o.client, Mail: ms, Keys: contacts, Own: own.Entities, Find: disc.Find,
			DocID: &k.DocID, Log: log, Address: o.meta.Address, Domain: domain,
		},
		Outbox: outbox.New(outbox.Config{
			Store: st, Mail: ms, Address: o.meta.Address, Log: log,
			Relay:     d.relay(o.meta, o.client),
			Keys:      disc,
			Signer:    own.Current,
			RetryBase: d.cfg.OutboxRetry,
		}),
		discovery: disc,
		d:         d, dir: o.dir, meta: *o.meta, client: o.client, keys: k, store: st, log: log,
		online: o.online, expires: o.expires,
	}
}

// settle does what an assembled account needs before it is used: the
// provider session (resumed when offline, else kept for a later unlock),
// the local token, and (when online) the account's key.
func (a *Account) settle(ctx context.Context, o opening) error {
	if !o.online {
		// Resume the session kept from the last online login, so sync
		// catches up when the provider is back.
		a.resumeSession()
	}
	if err := a.ensureLocalToken(o.secret); err != nil {
		return fmt.Errorf("keeping the local token: %w", err)
	}
	if a.Online() {
		if err := a.saveSession(a.client.Token(), a.expires); err != nil {
			return fmt.Errorf("keeping the provider session: %w", err)
		}
	}
	if !o.online {
		return nil
	}
	if err := a.Own.Ensure(ctx); err != nil {
		return fmt.Errorf("the account's key: %w", err)
	}
	if _, err := a.Own.RotateIfExpiring(ctx, a.Own.Window()); err != nil {
		a.log.Warn("key rotation", "err", err)
	}
	return nil
}

// start runs the account's background work until stop: sync, incoming,
// outbox, the provider session's renewal and the key's rotation.
func (a *Account) start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.cancel, a.stopped = cancel, make(chan struct{})
	stopped := a.stopped
	a.mu.Unlock()
	a.watchSession() // a revoked or deleted session locks the account (devices.go)
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
	wg.Add(5)
	go func() { defer wg.Done(); a.Outbox.Run(ctx) }()
	go func() { defer wg.Done(); a.renewLoop(ctx) }()
	go func() { defer wg.Done(); a.Own.RunRotation(ctx, a.pace) }()
	// Sync and the incoming queue stop while sync is paused (pause.go).
	go func() {
		defer wg.Done()
		a.d.unpaused(ctx, func(ctx context.Context) { a.Docs.Run(ctx, a.d.cfg.SyncInterval) })
	}()
	go func() {
		defer wg.Done()
		a.d.unpaused(ctx, func(ctx context.Context) { a.Incoming.Run(ctx, wake) })
	}()
	go func() { wg.Wait(); close(stopped) }()
}

// relay submits through the provider's submission service, verified
// against the pinned CA, with the session token.
func (d *Daemon) relay(meta *accountMeta, c *providerclient.Client) outbox.Relay {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(meta.Provider.CAPEM)
	addr := meta.Provider.JSON.Submission
	host, _, _ := net.SplitHostPort(addr)
	var r outbox.Relay = &outbox.SMTPRelay{
		Addr:  addr,
		TLS:   &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12},
		Login: meta.Login,
		Token: c.Token,
	}
	if d.cfg.WrapRelay != nil {
		r = d.cfg.WrapRelay(r)
	}
	return r
}

// Enqueue commits a message to the outbox (smtpd.Account).
func (a *Account) Enqueue(from string, rcpts []string, raw []byte) error {
	_, err := a.Outbox.Enqueue(from, rcpts, raw)
	return err
}

// sessionWait is how long the session's renewal (and the key's rotation,
// at the same pace) waits before its next look: half of what is left of
// the provider session, at least a second; an hour without a session.
func sessionWait(online bool, expires time.Time) time.Duration {
	if online && !expires.IsZero() {
		return max(time.Until(expires)/2, time.Second)
	}
	return time.Hour
}

// pace is the key rotation's ownkeys.Pace: the session's wait, and
// whether there is a session to publish a new key with.
func (a *Account) pace() (time.Duration, bool) {
	a.mu.Lock()
	online, expires := a.online, a.expires
	a.mu.Unlock()
	return sessionWait(online, expires), online
}

// renewLoop renews the provider session when half of its life is gone,
// so a daemon that runs for weeks keeps syncing without the password.
func (a *Account) renewLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		online, expires := a.online, a.expires
		a.mu.Unlock()
		wait := sessionWait(online, expires)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
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
	if a.Index != nil {
		// Before the mail store: what it indexed last is written.
		if err := a.Index.Close(); err != nil {
			a.log.Warn("writing the full-text index", "err", err)
		}
	}
	a.Mail.Close()
	if err := a.store.MarkClean(); err != nil {
		a.log.Warn("marking the local store closed cleanly", "err", err)
	}
	return a.store.Close()
}

// SearchableMail is the account's mail as the IMAP server reaches it:
// the mail store (every method of imapd.Mailstore) and the full-text
// index, which answers SEARCH BODY and TEXT (fulltext.Searcher).
type SearchableMail struct {
	*mailstore.Store
	index *fulltext.Index
}

var _ fulltext.Searcher = (*SearchableMail)(nil)

// Search answers SEARCH BODY and TEXT from the index (fulltext.Searcher);
// without an index, ok is false.
func (m *SearchableMail) Search(ctx context.Context, mbox string, uidValidity uint32, query string, all bool) ([]uint32, func(uint32) bool, bool, error) {
	if m.index == nil {
		return nil, nil, false, nil
	}
	return m.index.Search(ctx, mbox, uidValidity, query, all)
}

// IMAPMail is the value to hand the IMAP server as the account's
// Mailstore: the same pointer for the account's life (sessions that get
// the same value share their selected mailboxes), which also answers
// fulltext.Searcher.
func (a *Account) IMAPMail() *SearchableMail { return a.imapMail }

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

// OwnKeys returns the user's own keys, newest first (Own.List; the
// control API's).
func (a *Account) OwnKeys() ([]ownkeys.Key, error) { return a.Own.List() }

// CurrentKey is the user's newest key, parsed (Own.Current; the control
// API's and the tests').
func (a *Account) CurrentKey() (*openpgp.Entity, error) { return a.Own.Current() }
