package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
)

// Devices (docs/provider-api.md §4.8): this device names itself at each
// login and signup with an id made once at random and kept in the
// account's directory (device.json, public data like account.json) and
// the host name. When the provider answers that the session was ended
// on purpose (the device was revoked elsewhere, or the account deleted),
// the account is locked here and Status says why.

// deviceFile is DATA/accounts/ID/device.json.
type deviceFile struct {
	ID string `json:"id"`
}

// hostDeviceName is the device's name: the host name, cut to the
// provider's limit, or "bitmaskd" when there is none.
func hostDeviceName() string {
	h, err := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, h)
	if err != nil || strings.TrimSpace(h) == "" {
		return "bitmaskd"
	}
	for len(h) > providerapi.MaxDeviceNameLen {
		h = h[:len(h)-1]
	}
	return strings.ToValidUTF8(h, "")
}

// nameDevice sets the device c names at login: the id kept in dir (made
// and kept there the first time) and the host name.
func (d *Daemon) nameDevice(c *providerclient.Client, dir string) error {
	p := filepath.Join(dir, "device.json")
	var f deviceFile
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if json.Unmarshal(b, &f) != nil {
			f = deviceFile{}
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("reading device.json: %w", err)
	}
	dev := providerapi.Device{ID: f.ID, Name: hostDeviceName()}
	if dev.Validate() != nil {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return fmt.Errorf("making the device id: %w", err)
		}
		dev.ID = hex.EncodeToString(id)
		b, err := json.Marshal(deviceFile{ID: dev.ID})
		if err != nil {
			return err
		}
		if err := replaceFile(dir, "device.json", b); err != nil {
			return fmt.Errorf("keeping the device id: %w", err)
		}
	}
	c.SetDevice(dev)
	return nil
}

// DeviceID is this device's id for address ("" before its first login).
func (d *Daemon) DeviceID(address string) string {
	b, err := os.ReadFile(filepath.Join(accountDir(d.cfg.DataDir, address), "device.json"))
	if err != nil {
		return ""
	}
	var f deviceFile
	if json.Unmarshal(b, &f) != nil {
		return ""
	}
	return f.ID
}

// watchSession makes the account lock itself when the provider says its
// session was ended on purpose.
func (a *Account) watchSession() {
	a.client.OnSessionEnded(func(code string) {
		go a.d.sessionEnded(a, code)
	})
}

// endedMessage is what Status says of an account whose session the
// provider ended.
func endedMessage(code string) string {
	if code == providerapi.CodeAccountDeleted {
		return "the account was deleted (from another device); it is locked here, and its local copy stays until you remove it"
	}
	return "this device was revoked at the provider (from another device): sync stopped and the account is locked here; log in again to use it"
}

// sessionEnded locks a after the provider ended its session (code is
// providerapi.CodeSessionRevoked or CodeAccountDeleted): it stops
// syncing, forgets the session and the local token's unlock, and keeps
// the reason for Status. Only the first report acts.
func (d *Daemon) sessionEnded(a *Account, code string) {
	d.mu.Lock()
	if d.accounts[a.Address] != a {
		d.mu.Unlock()
		return // logged out, deleted here, or already handled
	}
	delete(d.accounts, a.Address)
	if d.ended == nil {
		d.ended = map[string]string{}
	}
	d.ended[a.Address] = code
	d.mu.Unlock()
	a.log.Warn("the provider ended this device's session; the account is locked", "reason", code)
	a.mu.Lock()
	a.online = false
	a.meta.LocalWrap = nil
	meta := a.meta
	a.mu.Unlock()
	serr := a.store.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketAccount, keySession) })
	if err := errors.Join(serr, a.stop(), writeMeta(a.dir, &meta)); err != nil {
		a.log.Warn("locking the account", "err", err)
	}
}

// endedStatus lists the accounts whose session the provider ended, for
// Status.
func (d *Daemon) endedStatus() []AccountStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []AccountStatus
	for addr, code := range d.ended {
		if _, ok := d.accounts[addr]; ok {
			continue // logged in again
		}
		state := "revoked"
		if code == providerapi.CodeAccountDeleted {
			state = "deleted"
		}
		st := AccountStatus{Address: addr, State: state}
		st.Sync.LastError = endedMessage(code)
		out = append(out, st)
	}
	return out
}

// Ended is why the provider ended address's session on this device
// ("revoked", "deleted"), with a message for the user, or "" when it did
// not.
func (d *Daemon) Ended(address string) (state, message string) {
	d.mu.Lock()
	code, ok := d.ended[address]
	_, in := d.accounts[address]
	d.mu.Unlock()
	if !ok || in {
		return "", ""
	}
	if code == providerapi.CodeAccountDeleted {
		return "deleted", endedMessage(code)
	}
	return "revoked", endedMessage(code)
}

// Device is one of an account's devices as the control API lists them.
type Device = providerapi.DeviceInfo

// Devices lists address's devices at the provider.
func (d *Daemon) Devices(ctx context.Context, address string) ([]Device, error) {
	a, err := d.onlineAccount(address)
	if err != nil {
		return nil, err
	}
	list, err := a.client.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return list.Devices, nil
}

// ErrAmbiguousDevice is RevokeDevice's error when a name fits several
// devices.
var ErrAmbiguousDevice = errors.New("several devices have that name; say which by its id (bitmaskctl devices list)")

// ErrCurrentDevice is RevokeDevice's error for this device itself.
var ErrCurrentDevice = errors.New("that is this device; to end its session use `bitmaskctl user logout` (nothing was revoked)")

// ErrNoDevice is RevokeDevice's error when nothing fits.
var ErrNoDevice = errors.New("no device of the account has that name or id (bitmaskctl devices list)")

// RevokeDevice ends the sessions of address's device named by nameOrID:
// an id, else a name that only one device has. It refuses this device.
func (d *Daemon) RevokeDevice(ctx context.Context, address, nameOrID string) (Device, error) {
	devs, err := d.Devices(ctx, address)
	if err != nil {
		return Device{}, err
	}
	var match []Device
	for _, dv := range devs {
		if dv.ID == nameOrID {
			match = []Device{dv}
			break
		}
		if dv.Name == nameOrID {
			match = append(match, dv)
		}
	}
	switch {
	case len(match) == 0:
		return Device{}, ErrNoDevice
	case len(match) > 1:
		return Device{}, ErrAmbiguousDevice
	case match[0].Current:
		return Device{}, ErrCurrentDevice
	}
	a, err := d.onlineAccount(address)
	if err != nil {
		return Device{}, err
	}
	rv, err := a.client.RevokeDevice(ctx, match[0].ID)
	switch {
	case providerclient.IsCode(err, providerapi.CodeCurrentDevice):
		return Device{}, ErrCurrentDevice
	case providerclient.IsCode(err, providerapi.CodeNotFound):
		return Device{}, ErrNoDevice
	case err != nil:
		return Device{}, fmt.Errorf("revoking the device: %w", err)
	}
	a.log.Info("device revoked", "device", rv.Device.ID)
	return rv.Device, nil
}

// onlineAccount is address's account when it is logged in at the
// provider.
func (d *Daemon) onlineAccount(address string) (*Account, error) {
	a, ok := d.Account(address)
	if !ok {
		if _, msg := d.Ended(address); msg != "" {
			return nil, fmt.Errorf("%s: %s", address, msg)
		}
		return nil, fmt.Errorf("%s is not logged in", address)
	}
	if !a.Online() {
		return nil, fmt.Errorf("%s is not logged in at the provider (offline); log in online first", address)
	}
	return a, nil
}
