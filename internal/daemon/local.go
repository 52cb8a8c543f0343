package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/localtoken"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/smtpd"
)

// The local token (package localtoken): what a mail client uses as the
// password of the account on 127.0.0.1 (IMAP and SMTP). It is made on
// this device at the first login and never leaves it. Like hydroxide's
// bridge password, it is also a key: account.json keeps the storage
// secret wrapped under a key derived from the token, so after a restart
// of bitmaskd the mail client's own login unlocks the account, without
// the account password. The token is kept in the account's encrypted
// store; the provider session is kept there too and resumed then.

const (
	bucketAccount = "account"
	keyLocalToken = "local-token"
	keySession    = "provider-session"
)

// ErrBadToken is returned for a wrong local token.
var ErrBadToken = errors.New("wrong address or local token")

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
		if tok, err = localtoken.New(); err != nil {
			return err
		}
		if err := a.store.Update(func(tx *localstore.Tx) error { return tx.Put(bucketAccount, keyLocalToken, []byte(tok)) }); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	a.mu.Lock()
	a.localToken = tok
	meta := a.meta
	a.mu.Unlock()
	if _, err := localtoken.Unwrap(tok, a.Address, meta.LocalWrap); err == nil {
		return nil // already wrapped under this token
	}
	wrapped, err := localtoken.Wrap(tok, a.Address, secret)
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
		if localtoken.Equal(token, a.LocalToken()) {
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
	secret, err := localtoken.Unwrap(token, address, meta.LocalWrap)
	if err != nil {
		return nil, ErrBadToken
	}
	release, err := d.claim(address)
	if err != nil {
		// Another login won the race: check against it.
		if a, ok := d.Account(address); ok && localtoken.Equal(token, a.LocalToken()) {
			return a, nil
		}
		return nil, err
	}
	defer release()
	c, err := providerclient.New(meta.Provider, d.cfg.Client)
	if err != nil {
		return nil, err
	}
	// Offline: the session kept in the store is resumed.
	a, err := d.openAccount(ctx, opening{dir: dir, meta: meta, client: c, secret: secret})
	if err != nil {
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
