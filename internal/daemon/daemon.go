// Package daemon is bitmaskd: the accounts it holds and their login,
// signup and password flows. Mail protocols (IMAP, SMTP) build on the
// Account type; the control API (package controlserver) and the serving of
// the local services (package localserve) use the daemon through its
// exported methods.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/localtls"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Config is bitmaskd's configuration.
type Config struct {
	DataDir string
	// NewKDFParams chooses the Argon2id parameters of a new password
	// (default seal.DefaultKDFParams; tests choose cheaper ones).
	NewKDFParams func() (seal.KDFParams, error)
	// KDFFloor is the weakest Argon2id parameters (passes, memory) the
	// daemon derives with: what a provider answers at login, what
	// account.json keeps and what NewKDFParams makes must reach it.
	// Zero means seal.MinKDFParams; only tests lower it.
	KDFFloor    seal.KDFParams
	KeyLifetime time.Duration // own key lifetime (default keys.DefaultLifetime)
	// Indexer precomputes the IMAP metadata of each message (the IMAP
	// server's; nil stores none).
	Indexer      mailstore.Indexer
	SyncInterval time.Duration // periodic sync besides notifications (default 5m)
	Client       providerclient.Options
	// Where the local mail services listen (for `mail config`). Their
	// certificate is the one kept in DataDir (package localtls), loaded
	// or made by New.
	IMAPAddr, SMTPAddr string
	// WKD is the HTTP client for Web Key Directory lookups (nil: off).
	WKD *http.Client
	// OutboxRetry is the outbox's first retry delay (default 30s).
	OutboxRetry time.Duration
	// WrapRelay, if set, wraps each account's relay (tests look at what
	// leaves the device).
	WrapRelay func(outbox.Relay) outbox.Relay
	Logger    *slog.Logger
}

// Daemon holds the logged-in accounts.
type Daemon struct {
	cfg  Config
	log  *slog.Logger
	cert *localtls.Cert // the local IMAP and SMTP certificate

	mu       sync.Mutex
	accounts map[string]*Account
	busy     map[string]bool     // address -> a login/signup in progress
	opening  map[string]*syncing // logins past unlock, still in their first sync
	ended    map[string]string   // address -> why the provider ended its session (devices.go)

	pause pauseState // SetSyncPaused (pause.go)
}

// New makes a daemon over cfg.DataDir.
func New(cfg Config) (*Daemon, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("daemon: no data directory")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: making the data directory: %w", err)
	}
	if cfg.NewKDFParams == nil {
		cfg.NewKDFParams = seal.DefaultKDFParams
	}
	if cfg.KDFFloor.Time == 0 && cfg.KDFFloor.MemoryKiB == 0 {
		cfg.KDFFloor = seal.MinKDFParams()
	}
	// An account made below the floor could not be logged in to again.
	k, err := cfg.NewKDFParams()
	if err != nil {
		return nil, fmt.Errorf("daemon: choosing the password hashing parameters: %w", err)
	}
	if err := k.AtLeast(cfg.KDFFloor); err != nil {
		return nil, fmt.Errorf("daemon: the Argon2id parameters for new passwords are below the floor: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cert, err := localtls.LoadCert(cfg.DataDir, time.Now())
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return &Daemon{cfg: cfg, log: cfg.Logger, cert: cert, accounts: map[string]*Account{}, busy: map[string]bool{}, opening: map[string]*syncing{}}, nil
}

// Account returns a logged-in account.
func (d *Daemon) Account(address string) (*Account, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.accounts[address]
	return a, ok
}

// Accounts lists the logged-in accounts.
func (d *Daemon) Accounts() []*Account {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Account, 0, len(d.accounts))
	for _, a := range d.accounts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// claim marks address busy so two logins of one account do not race.
func (d *Daemon) claim(address string) (release func(), err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.accounts[address]; ok {
		return nil, fmt.Errorf("%s is already logged in", address)
	}
	if d.busy[address] {
		return nil, fmt.Errorf("a login of %s is already in progress", address)
	}
	d.busy[address] = true
	return func() {
		d.mu.Lock()
		delete(d.busy, address)
		d.mu.Unlock()
	}, nil
}

func (d *Daemon) add(a *Account) {
	d.mu.Lock()
	d.accounts[a.Address] = a
	d.mu.Unlock()
}

// ProviderRef says where an account's provider is: a domain or URL
// (default: the address's domain) and optionally the CA fingerprint the
// user was given.
type ProviderRef struct {
	URL         string `json:"provider,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

func (d *Daemon) bootstrap(ctx context.Context, domain string, ref ProviderRef) (*providerclient.Provider, string, error) {
	u := ref.URL
	if u == "" {
		u = domain
	}
	p, err := providerclient.Bootstrap(ctx, u, ref.Fingerprint, d.cfg.Client)
	if err != nil {
		return nil, "", err
	}
	if p.JSON.Domain != domain {
		return nil, "", fmt.Errorf("bootstrap: %s serves the domain %s, not %s", u, p.JSON.Domain, domain)
	}
	return p, u, nil
}

// CreateUser signs up address at its provider, logs in, makes and
// publishes the OpenPGP key, and starts syncing.
func (d *Daemon) CreateUser(ctx context.Context, address string, password []byte, ref ProviderRef, invite string) (*Account, error) {
	login, domain, err := SplitAddress(address)
	if err != nil {
		return nil, err
	}
	address = login + "@" + domain
	if len(password) < 8 {
		return nil, errors.New("a password needs at least 8 characters")
	}
	release, err := d.claim(address)
	if err != nil {
		return nil, err
	}
	defer release()
	dir := accountDir(d.cfg.DataDir, address)
	if _, err := os.Stat(filepath.Join(dir, "account.json")); err == nil {
		return nil, fmt.Errorf("%s already has an account on this device; log in instead", address)
	}
	p, purl, err := d.bootstrap(ctx, domain, ref)
	if err != nil {
		return nil, err
	}
	c, err := providerclient.New(p, d.cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("provider client: %w", err)
	}
	if err := d.nameDevice(c, dir); err != nil {
		return nil, err
	}
	kdf, err := d.cfg.NewKDFParams()
	if err != nil {
		return nil, fmt.Errorf("choosing the password hashing parameters: %w", err)
	}
	if err := kdf.AtLeast(d.cfg.KDFFloor); err != nil {
		return nil, fmt.Errorf("signup: %w", err)
	}
	secret, cr, tok, expires, err := c.SignupAccount(ctx, login, password, kdf, invite)
	if err != nil {
		return nil, fmt.Errorf("signup: %w", err)
	}
	c.SetToken(tok)
	// The first recovery code, in the same flow (recovery.go).
	d.signupRecovery(ctx, c, address, login, secret)
	meta := &accountMeta{
		Address: address, Login: login, ProviderURL: purl, Provider: p,
		KDF: cr.KDF, WrappedSecret: cr.WrappedSecret,
	}
	if err := writeMeta(dir, meta); err != nil {
		return nil, err
	}
	a, err := d.openAccount(ctx, opening{dir: dir, meta: meta, client: c, secret: secret, online: true, expires: expires})
	if err != nil {
		return nil, err
	}
	a.start()
	d.add(a)
	d.log.Info("account created", "account", address)
	return a, nil
}

// Login unlocks address with password: online with SRP when the
// provider is reachable (fetching the wrapped secret, so it works on a new
// device), else offline from the locally kept wrapped secret. It syncs
// once before returning when online, then keeps syncing.
func (d *Daemon) Login(ctx context.Context, address string, password []byte, ref ProviderRef) (*Account, error) {
	login, domain, err := SplitAddress(address)
	if err != nil {
		return nil, err
	}
	address = login + "@" + domain
	release, err := d.claim(address)
	if err != nil {
		return nil, err
	}
	defer release()
	dir := accountDir(d.cfg.DataDir, address)
	meta, err := readMeta(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var (
		p    *providerclient.Provider
		purl string
	)
	if meta != nil && meta.Provider != nil && ref.URL == "" && ref.Fingerprint == "" {
		p, purl = meta.Provider, meta.ProviderURL // pinned at first login
	} else {
		p, purl, err = d.bootstrap(ctx, domain, ref)
		if err != nil {
			// Fall back on the provider pinned at an earlier login only
			// when it could not be reached; a refused pin is an answer.
			if meta == nil || meta.Provider == nil || !isOffline(err) {
				return nil, err
			}
			p, purl = meta.Provider, meta.ProviderURL
		}
	}
	c, err := providerclient.New(p, d.cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("provider client: %w", err)
	}
	if err := d.nameDevice(c, dir); err != nil {
		return nil, err
	}
	// The provider's Argon2id parameters must reach the floor and those
	// kept here for the account (from signup or the last login or
	// password change), or the provider could have the device stretch
	// the password weakly and send a proof it can cheaply attack.
	var stored *seal.KDFParams
	if meta != nil {
		stored = &meta.KDF
	}
	sess, err := c.LoginAtLeast(ctx, login, password, d.cfg.KDFFloor, stored)
	online := err == nil
	var secret []byte
	switch {
	case online:
		secret = sess.Secret
		meta = &accountMeta{
			Address: address, Login: login, ProviderURL: purl, Provider: p,
			KDF: sess.KDF, WrappedSecret: sess.WrappedSecret,
		}
		if err := writeMeta(dir, meta); err != nil {
			return nil, err
		}
	case errors.Is(err, providerclient.ErrWrongPassword):
		return nil, err
	case errors.Is(err, seal.ErrWeakKDF):
		d.log.Warn("login refused: the provider asked for weaker password hashing than allowed", "account", address, "err", err)
		return nil, err
	case isOffline(err) && meta != nil:
		d.log.Info("provider unreachable, unlocking offline", "account", address, "err", err)
		if err := d.checkKept(meta.KDF); err != nil {
			return nil, err
		}
		secret, err = providerclient.UnwrapOffline(login, password, meta.KDF, meta.WrappedSecret)
		if err != nil {
			return nil, fmt.Errorf("offline unlock: %w", err)
		}
	default:
		return nil, err // providerclient's login errors say "login: ..."
	}
	o := opening{dir: dir, meta: meta, client: c, secret: secret, online: online}
	if online {
		o.expires = sess.Expires
		// Status shows the login from its first sync until it is done.
		o.onFirstSync = func(docs *docsync.Engine) {
			d.mu.Lock()
			d.opening[address] = &syncing{address: address, provider: purl, docs: docs}
			d.mu.Unlock()
		}
		defer func() {
			d.mu.Lock()
			delete(d.opening, address)
			d.mu.Unlock()
		}()
	}
	a, err := d.openAccount(ctx, o)
	if err != nil {
		return nil, err
	}
	a.start()
	d.add(a)
	d.log.Info("logged in", "account", address, "online", online)
	return a, nil
}

// checkKept refuses Argon2id parameters kept in account.json that are
// below the floor (an account.json altered on disk, or from a build
// with a lower floor) before the password is stretched with them.
func (d *Daemon) checkKept(kdf seal.KDFParams) error {
	if err := kdf.AtLeast(d.cfg.KDFFloor); err != nil {
		return fmt.Errorf("the password hashing parameters kept for this account are weaker than allowed (an online login replaces them): %w", err)
	}
	return nil
}

// isOffline tells a provider that could not be reached from one that
// answered with an error.
func isOffline(err error) bool {
	var ae *providerclient.APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded)
}

// Logout ends the provider session, stops syncing and locks the store.
func (d *Daemon) Logout(ctx context.Context, address string) error {
	d.mu.Lock()
	a, ok := d.accounts[address]
	delete(d.accounts, address)
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s is not logged in", address)
	}
	if err := a.Docs.Sync(ctx); err != nil {
		a.log.Info("final sync before logout failed; changes stay queued locally", "err", err)
	}
	var lerr error
	if a.Online() {
		if err := a.client.Logout(ctx); err != nil {
			lerr = fmt.Errorf("ending the provider session: %w", err)
		}
	}
	// The session ended: forget it, so nothing resumes it.
	serr := a.store.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketAccount, keySession) })
	if serr != nil {
		serr = fmt.Errorf("forgetting the provider session: %w", serr)
	}
	// Logged out means locked: the local token no longer unlocks the
	// account (the next login wraps the secret for it again).
	a.mu.Lock()
	a.meta.LocalWrap = nil
	meta := a.meta
	a.mu.Unlock()
	return errors.Join(serr, a.stop(), lerr, writeMeta(a.dir, &meta))
}

// ChangePassword re-wraps the storage secret for the new password and
// replaces the verifier at the provider in one step.
func (d *Daemon) ChangePassword(ctx context.Context, address string, oldPassword, newPassword []byte) error {
	a, ok := d.Account(address)
	if !ok {
		return fmt.Errorf("%s is not logged in", address)
	}
	if len(newPassword) < 8 {
		return errors.New("a password needs at least 8 characters")
	}
	if !a.Online() {
		return errors.New("changing the password needs the provider; log in online first")
	}
	if err := d.checkKept(a.meta.KDF); err != nil {
		return err
	}
	// Prove the old password to ourselves before changing anything.
	secret, err := providerclient.UnwrapOffline(a.Login, oldPassword, a.meta.KDF, a.meta.WrappedSecret)
	if err != nil {
		return fmt.Errorf("checking the old password: %w", err)
	}
	kdf, err := d.cfg.NewKDFParams()
	if err != nil {
		return fmt.Errorf("choosing the password hashing parameters: %w", err)
	}
	// A password change never weakens the stretch: the new parameters
	// keep at least the passes and memory of the current ones (made on
	// a device with stronger defaults, say).
	kdf.Time = max(kdf.Time, a.meta.KDF.Time)
	kdf.MemoryKiB = max(kdf.MemoryKiB, a.meta.KDF.MemoryKiB)
	if err := errors.Join(kdf.AtLeast(d.cfg.KDFFloor), kdf.AtLeast(a.meta.KDF)); err != nil {
		return fmt.Errorf("password change: %w", err)
	}
	cr, err := providerclient.NewCredentials(a.Login, newPassword, secret, kdf)
	if err != nil {
		return fmt.Errorf("password change: %w", err)
	}
	if err := a.client.SetCredentials(ctx, cr); err != nil {
		return fmt.Errorf("password change: %w", err)
	}
	a.mu.Lock()
	a.meta.KDF, a.meta.WrappedSecret = cr.KDF, cr.WrappedSecret
	meta := a.meta
	a.mu.Unlock()
	return writeMeta(a.dir, &meta)
}

// Close logs nothing out but stops every account's sync and closes the
// stores.
func (d *Daemon) Close() error {
	d.mu.Lock()
	accts := d.accounts
	d.accounts = map[string]*Account{}
	d.mu.Unlock()
	var errs []error
	for _, a := range accts {
		errs = append(errs, a.stop())
	}
	return errors.Join(errs...)
}

// syncing is a login past unlock in its first sync, as Status shows it
// (online: only an online login syncs before it opens).
type syncing struct {
	address, provider string
	docs              *docsync.Engine
}

// AccountStatus is one account in `bitmaskctl status`.
type AccountStatus struct {
	Address  string         `json:"address"`
	State    string         `json:"state"` // "ready", or "logging in" during the first sync
	Online   bool           `json:"online"`
	Provider string         `json:"provider"`
	Sync     docsync.Status `json:"sync"`
	Key      string         `json:"key_fingerprint,omitempty"`
}

// Status reports every logged-in account.
func (d *Daemon) Status() []AccountStatus {
	out := []AccountStatus{}
	d.mu.Lock()
	for _, s := range d.opening {
		out = append(out, AccountStatus{Address: s.address, State: "logging in", Online: true, Provider: s.provider, Sync: s.docs.Status()})
	}
	d.mu.Unlock()
	for _, a := range d.Accounts() {
		s := AccountStatus{Address: a.Address, State: "ready", Online: a.Online(), Provider: a.meta.ProviderURL, Sync: a.Docs.Status()}
		if ks, err := a.OwnKeys(); err == nil && len(ks) > 0 {
			s.Key = ks[0].Fingerprint
		}
		out = append(out, s)
	}
	return append(out, d.endedStatus()...)
}
