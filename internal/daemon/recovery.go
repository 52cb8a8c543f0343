package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The recovery code (docs/formats.md "Recovery code", docs/provider-api.md
// §4.7): made at signup and on demand, it wraps the storage secret a
// second time, under a key the provider cannot derive, and proves itself
// with a second SRP verifier. With it, a device that has nothing of the
// account sets a new password and keeps every message and key.

// signupCodeTTL is how long the code made at signup waits for the
// control API's answer to take it (TakeSignupRecoveryCode).
const signupCodeTTL = 10 * time.Minute

type pendingCode struct {
	code    string
	expires time.Time
}

// signupCodes are the codes made at signup, until taken: key
// signupKey{daemon, address}.
var signupCodes sync.Map

type signupKey struct {
	d       *Daemon
	address string
}

// recoveryKDF is the Argon2id parameters for a new recovery code: those
// for new passwords (so the provider's made-up answers, which use the
// product defaults, look like real ones), at least the floor.
func (d *Daemon) recoveryKDF() (seal.KDFParams, error) {
	kdf, err := d.cfg.NewKDFParams()
	if err != nil {
		return seal.KDFParams{}, fmt.Errorf("choosing the recovery code's hashing parameters: %w", err)
	}
	if err := kdf.AtLeast(d.cfg.KDFFloor); err != nil {
		return seal.KDFParams{}, err
	}
	return kdf, nil
}

// setRecovery makes a new recovery code for the account whose storage
// secret is secret and sends its recovery data to the provider, which
// voids the earlier code. It returns the code as written for the user.
func (d *Daemon) setRecovery(ctx context.Context, c *providerclient.Client, login string, secret []byte) (string, error) {
	code, err := seal.NewRecoveryCode()
	if err != nil {
		return "", err
	}
	kdf, err := d.recoveryKDF()
	if err != nil {
		return "", err
	}
	cr, err := providerclient.NewRecoveryCredentials(login, code, secret, kdf)
	if err != nil {
		return "", err
	}
	if err := c.SetRecovery(ctx, cr); err != nil {
		return "", fmt.Errorf("storing the recovery data at the provider: %w", err)
	}
	return code.String(), nil
}

// signupRecovery makes the account's first recovery code during signup,
// right after the provider created the account (c holds its session),
// and keeps it for TakeSignupRecoveryCode. A failure does not undo the
// signup: the account works, and `bitmaskctl user recovery-code` makes a
// code later.
func (d *Daemon) signupRecovery(ctx context.Context, c *providerclient.Client, address, login string, secret []byte) {
	code, err := d.setRecovery(ctx, c, login, secret)
	if err != nil {
		d.log.Warn("no recovery code was made at signup; make one with bitmaskctl user recovery-code", "account", address, "err", err)
		return
	}
	signupCodes.Store(signupKey{d, address}, pendingCode{code: code, expires: time.Now().Add(signupCodeTTL)})
}

// TakeSignupRecoveryCode returns the recovery code made when address
// signed up on this daemon, once: it is forgotten as it is returned (or
// 10 minutes after the signup). Empty when there is none.
func (d *Daemon) TakeSignupRecoveryCode(address string) string {
	v, ok := signupCodes.LoadAndDelete(signupKey{d, address})
	if !ok {
		return ""
	}
	p := v.(pendingCode)
	if time.Now().After(p.expires) {
		return ""
	}
	return p.code
}

// NewRecoveryCode makes a new recovery code for a logged-in account,
// after checking its password, and voids the earlier code at the
// provider. The code is returned to be shown once; it is kept nowhere.
func (d *Daemon) NewRecoveryCode(ctx context.Context, address string, password []byte) (string, error) {
	a, ok := d.Account(address)
	if !ok {
		return "", fmt.Errorf("%s is not logged in", address)
	}
	if !a.Online() {
		return "", errors.New("a new recovery code needs the provider; log in online first")
	}
	a.mu.Lock()
	meta := a.meta
	a.mu.Unlock()
	if err := d.checkKept(meta.KDF); err != nil {
		return "", err
	}
	secret, err := providerclient.UnwrapOffline(a.Login, password, meta.KDF, meta.WrappedSecret)
	if err != nil {
		return "", fmt.Errorf("checking the password: %w", err)
	}
	code, err := d.setRecovery(ctx, a.client, a.Login, secret)
	if err != nil {
		return "", err
	}
	d.log.Info("new recovery code made; the earlier one no longer works", "account", address)
	return code, nil
}

// Recover sets a new password for address with its recovery code, on
// any device (this one need not have known the account), and logs the
// account in with it. The code is read locally first, so a typo is
// caught before anything is sent. At the provider, every other session
// of the account ends; mail and keys are kept, since the storage secret
// does not change. The recovery code stays valid (it still wraps the
// same secret) until a new one is made.
func (d *Daemon) Recover(ctx context.Context, address, code string, newPassword []byte, ref ProviderRef) (*Account, error) {
	rc, err := seal.ParseRecoveryCode(code)
	if err != nil {
		return nil, err
	}
	login, domain, err := SplitAddress(address)
	if err != nil {
		return nil, err
	}
	address = login + "@" + domain
	if len(newPassword) < 8 {
		return nil, errors.New("a password needs at least 8 characters")
	}
	kdf, err := d.cfg.NewKDFParams()
	if err != nil {
		return nil, fmt.Errorf("choosing the password hashing parameters: %w", err)
	}
	if err := kdf.AtLeast(d.cfg.KDFFloor); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	release, err := d.claim(address)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w (to change the password of a logged-in account, use user passwd)", err)
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
		p, purl = meta.Provider, meta.ProviderURL // pinned at an earlier login
	} else if p, purl, err = d.bootstrap(ctx, domain, ref); err != nil {
		return nil, err
	}
	if meta != nil {
		// Never weaker than what this device kept for the account.
		kdf.Time = max(kdf.Time, meta.KDF.Time)
		kdf.MemoryKiB = max(kdf.MemoryKiB, meta.KDF.MemoryKiB)
	}
	c, err := providerclient.New(p, d.cfg.Client)
	if err != nil {
		return nil, fmt.Errorf("provider client: %w", err)
	}
	// The new session is this device's (devices.go).
	if err := d.nameDevice(c, dir); err != nil {
		return nil, err
	}
	sess, err := c.Recover(ctx, login, rc, d.cfg.KDFFloor, newPassword, kdf)
	if err != nil {
		if errors.Is(err, providerclient.ErrWrongRecoveryCode) {
			d.log.Info("recovery refused by the provider", "account", address)
		}
		return nil, err
	}
	meta = &accountMeta{
		Address: address, Login: login, ProviderURL: purl, Provider: p,
		KDF: sess.KDF, WrappedSecret: sess.WrappedSecret,
	}
	if err := writeMeta(dir, meta); err != nil {
		return nil, err
	}
	d.log.Info("password reset with the recovery code", "account", address)
	o := opening{dir: dir, meta: meta, client: c, secret: sess.Secret, online: true, expires: sess.Expires}
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
	a, err := d.openAccount(ctx, o)
	if err != nil {
		return nil, err
	}
	a.start()
	d.add(a)
	return a, nil
}
