package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/hkdf"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/smtpd"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The local token: what a mail client uses as the password of the
// account on 127.0.0.1 (IMAP and SMTP). It is made on this device at the
// first login and never leaves it. Like hydroxide's bridge password, it is
// also a key: account.json keeps the storage secret wrapped under a key
// derived from the token, so after a restart of bitmaskd the mail
// client's own login unlocks the account, without the account password.
// The provider session is kept in the encrypted store and resumed then.

const (
	bucketAccount = "account"
	keyLocalToken = "local-token"
	keySession    = "provider-session"
)

// ErrBadToken is returned for a wrong local token.
var ErrBadToken = errors.New("wrong address or local token")

func tokenKEK(token string) (*[32]byte, error) {
	var k [32]byte
	r := hkdf.New(sha256.New, []byte(token), nil, []byte("bitmask/v1/local-token-kek"))
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return nil, err
	}
	return &k, nil
}

func localWrapAD(address string) []byte { return []byte("bitmask-local-v1\x00" + address) }

// LocalToken is the account's local token for mail clients.
func (a *Account) LocalToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.localToken
}

// ensureLocalToken loads the account's local token from the store, or
// makes one, and keeps the secret wrapped under it in account.json.
func (a *Account) ensureLocalToken(secret []byte) error {
	var tok string
	err := a.store.View(func(tx *localstore.Tx) error {
		v, err := tx.Get(bucketAccount, keyLocalToken)
		tok = string(v)
		return err
	})
	if errors.Is(err, localstore.ErrNotFound) {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		tok = hex.EncodeToString(raw)
		if err := a.store.Update(func(tx *localstore.Tx) error { return tx.Put(bucketAccount, keyLocalToken, []byte(tok)) }); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	kek, err := tokenKEK(tok)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.localToken = tok
	meta := a.meta
	a.mu.Unlock()
	if _, err := seal.UnwrapSecret(kek, meta.LocalWrap, localWrapAD(a.Address)); err == nil {
		return nil // already wrapped under this token
	}
	wrapped, err := seal.WrapSecret(kek, secret, localWrapAD(a.Address))
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.meta.LocalWrap = wrapped
	meta = a.meta
	a.mu.Unlock()
	return writeMeta(a.dir, &meta)
}

type savedSession struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// saveSession keeps the provider session in the encrypted store, so an
// unlock by local token can resume it.
func (a *Account) saveSession(token string, expires time.Time) error {
	b, _ := json.Marshal(savedSession{Token: token, Expires: expires})
	return a.store.Update(func(tx *localstore.Tx) error { return tx.Put(bucketAccount, keySession, b) })
}

// CheckLocal verifies a mail client's login: address and local token. A
// logged-in account is checked against its token; an account that is not
// logged in is unlocked with it.
func (d *Daemon) CheckLocal(ctx context.Context, address, token string) (*Account, error) {
	login, domain, err := SplitAddress(address)
	if err != nil {
		return nil, ErrBadToken
	}
	address = login + "@" + domain
	if a, ok := d.Account(address); ok {
		if subtle.ConstantTimeCompare([]byte(a.LocalToken()), []byte(token)) == 1 {
			return a, nil
		}
		return nil, ErrBadToken
	}
	return d.unlockWithToken(ctx, address, token)
}

func (d *Daemon) unlockWithToken(ctx context.Context, address, token string) (*Account, error) {
	dir := accountDir(d.cfg.DataDir, address)
	meta, err := readMeta(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrBadToken
	} else if err != nil {
		return nil, err
	}
	if len(meta.LocalWrap) == 0 {
		return nil, ErrBadToken
	}
	kek, err := tokenKEK(token)
	if err != nil {
		return nil, err
	}
	secret, err := seal.UnwrapSecret(kek, meta.LocalWrap, localWrapAD(address))
	if err != nil {
		return nil, ErrBadToken
	}
	release, err := d.claim(address)
	if err != nil {
		// Another login won the race: check against it.
		if a, ok := d.Account(address); ok && subtle.ConstantTimeCompare([]byte(a.LocalToken()), []byte(token)) == 1 {
			return a, nil
		}
		return nil, err
	}
	defer release()
	c, err := providerclient.New(meta.Provider, d.cfg.Client)
	if err != nil {
		return nil, err
	}
	a, err := d.openAccount(dir, meta, c, secret, false)
	if err != nil {
		return nil, err
	}
	a.resumeSession()
	if err := a.finishOpen(ctx, secret, false); err != nil {
		a.stop()
		return nil, err
	}
	a.start()
	d.add(a)
	d.log.Info("unlocked with the local token", "account", address, "session", a.Online())
	return a, nil
}

// resumeSession takes up the provider session kept in the store, if it
// has not expired.
func (a *Account) resumeSession() {
	var ss savedSession
	_ = a.store.View(func(tx *localstore.Tx) error {
		v, err := tx.Get(bucketAccount, keySession)
		if err == nil {
			_ = json.Unmarshal(v, &ss)
		}
		return nil
	})
	if ss.Token != "" && time.Now().Before(ss.Expires) {
		a.client.SetToken(ss.Token)
		a.mu.Lock()
		a.online, a.expires = true, ss.Expires
		a.mu.Unlock()
	}
}

// smtpAccount adapts an Account to smtpd.Account.
type smtpAccount struct{ *Account }

func (s smtpAccount) Address() string { return s.Account.Address }

// CheckSMTP is smtpd.Auth.
func (d *Daemon) CheckSMTP(ctx context.Context, username, password string) (smtpd.Account, error) {
	a, err := d.CheckLocal(ctx, username, password)
	if err != nil {
		return nil, err
	}
	return smtpAccount{a}, nil
}
