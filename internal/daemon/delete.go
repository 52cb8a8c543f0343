package daemon

import (
	"context"
	"fmt"
	"os"
)

// Account deletion (docs/provider-api.md §4.9): the provider deletes
// everything of the account after a fresh proof of the password, then
// this device deletes the account's local data.

// DeleteSummary is what deleting an account loses, as this device knows
// it.
type DeleteSummary struct {
	Address   string `json:"address"`
	Mailboxes int    `json:"mailboxes"`
	Messages  int    `json:"messages"`
	Keys      int    `json:"keys"`    // the account's own OpenPGP keys
	Devices   int    `json:"devices"` // logged in at the provider, this one included
}

// DeletionSummary counts what deleting address would lose.
func (d *Daemon) DeletionSummary(ctx context.Context, address string) (DeleteSummary, error) {
	a, err := d.onlineAccount(address)
	if err != nil {
		return DeleteSummary{}, err
	}
	s := DeleteSummary{Address: address}
	for _, mb := range a.Mail.Mailboxes() {
		s.Mailboxes++
		s.Messages += int(mb.Messages)
	}
	if ks, err := a.OwnKeys(); err == nil {
		s.Keys = len(ks)
	}
	if devs, err := d.Devices(ctx, address); err == nil {
		s.Devices = len(devs)
	}
	return s, nil
}

// DeleteAccount deletes address at its provider, proving password
// afresh, and then its local data on this device. A wrong password is
// providerclient.ErrWrongPassword and deletes nothing.
func (d *Daemon) DeleteAccount(ctx context.Context, address string, password []byte) error {
	a, err := d.onlineAccount(address)
	if err != nil {
		return err
	}
	if err := d.checkKept(a.meta.KDF); err != nil {
		return err
	}
	if err := a.client.DeleteAccount(ctx, a.Login, password, d.cfg.KDFFloor, &a.meta.KDF); err != nil {
		return fmt.Errorf("%w (nothing was deleted)", err)
	}
	// Deleted at the provider: nothing here is worth keeping. Out of
	// the daemon first, so the session's end (401 account_deleted) is
	// not taken for a deletion elsewhere.
	d.mu.Lock()
	if d.accounts[address] == a {
		delete(d.accounts, address)
	}
	d.mu.Unlock()
	a.mu.Lock()
	a.online = false
	a.mu.Unlock()
	serr := a.stop()
	if err := os.RemoveAll(a.dir); err != nil {
		return fmt.Errorf("the account was deleted at the provider, but its local data could not be removed (%s): %w", a.dir, err)
	}
	if serr != nil {
		a.log.Info("closing the deleted account", "err", serr)
	}
	d.log.Info("account deleted", "account", address)
	return nil
}
