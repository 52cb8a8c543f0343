package e2e

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// ctl is the control API client bitmaskctl would use for d.
func (d *device) ctl() *controlapi.Client {
	return controlapi.NewLocalClient(d.ControlAddr, d.Dir)
}

// wantCtlErr checks a control API error's status and that its message
// says what it should.
func wantDevCtlErr(t *testing.T, what string, err error, status int, says string) {
	t.Helper()
	var ce *controlapi.Error
	if !errors.As(err, &ce) || ce.Status != status || !strings.Contains(ce.Message, says) {
		t.Fatalf("%s: %v, want HTTP %d saying %q", what, err, status, says)
	}
}

// waitState waits until d's status shows address in state (the event:
// the provider ended d's session and d locked the account).
func waitState(t *testing.T, d *device, address, state string) controlapi.AccountStatus {
	t.Helper()
	var got controlapi.AccountStatus
	testenv.Eventually(t, 30*time.Second, address+" to be "+state+" on the other device", func() bool {
		st, err := d.ctl().Status(ctx(t))
		if err != nil {
			return false
		}
		for _, a := range st.Accounts {
			if a.Address == address && a.State == state {
				got = a
				return true
			}
		}
		return false
	})
	return got
}

// TestDevicesListAndRevoke: two bitmaskd devices of one account list
// each other with their last sync; revoking one from the other stops its
// sync (401 session_revoked) and locks the account there; a device
// cannot revoke itself, an unknown device is refused, and a name two
// devices share asks for the id.
func TestDevicesListAndRevoke(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "olga")
	b := login(t, p, "olga")
	addr := a.acct.Address
	if err := b.acct.Docs.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	idA, idB := a.DeviceID(addr), b.DeviceID(addr)
	if idA == "" || idB == "" || idA == idB {
		t.Fatalf("device ids %q and %q", idA, idB)
	}
	list, err := a.ctl().Devices(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 2 {
		t.Fatalf("devices: %+v", list.Devices)
	}
	for _, d := range list.Devices {
		switch d.ID {
		case idA:
			if !d.Current {
				t.Errorf("A is not marked as this device: %+v", d)
			}
		case idB:
			if d.Current || d.LastSync.IsZero() || d.Created.IsZero() {
				t.Errorf("B: %+v", d)
			}
		default:
			t.Errorf("unknown device %+v", d)
		}
		if host, _ := os.Hostname(); host != "" && d.Name != host {
			t.Errorf("device name %q, want the host name %q", d.Name, host)
		}
	}

	// Bad input: this device, a name both devices have, an unknown one.
	_, err = a.ctl().RevokeDevice(ctx(t), controlapi.RevokeRequest{Address: addr, Device: idA})
	wantDevCtlErr(t, "revoking this device", err, http.StatusConflict, "logout")
	_, err = a.ctl().RevokeDevice(ctx(t), controlapi.RevokeRequest{Address: addr, Device: list.Devices[0].Name})
	wantDevCtlErr(t, "revoking by a shared name", err, http.StatusConflict, "id")
	_, err = a.ctl().RevokeDevice(ctx(t), controlapi.RevokeRequest{Address: addr, Device: "no-such-device-0000"})
	wantDevCtlErr(t, "revoking an unknown device", err, http.StatusNotFound, "no device")
	if l, _ := a.ctl().Devices(ctx(t), addr); len(l.Devices) != 2 {
		t.Fatalf("a refused revoke changed the devices: %+v", l.Devices)
	}
	if err := b.acct.Docs.Sync(ctx(t)); err != nil {
		t.Fatalf("B after the refused revokes: %v", err)
	}

	rv, err := a.ctl().RevokeDevice(ctx(t), controlapi.RevokeRequest{Address: addr, Device: idB})
	if err != nil {
		t.Fatal(err)
	}
	if rv.Device.ID != idB || !strings.Contains(rv.Advice, "Change your password") || !strings.Contains(rv.Advice, "storage secret") {
		t.Fatalf("revoke answer: %+v", rv)
	}
	// B hears it at once (its event stream closes, the reconnect is
	// refused) and locks the account.
	st := waitState(t, b, addr, "revoked")
	if !strings.Contains(st.Sync.LastError, "revoked") || st.Online {
		t.Fatalf("B's status: %+v", st)
	}
	if _, ok := b.Account(addr); ok {
		t.Fatal("B still holds the account open")
	}
	_, err = b.acct.Client().Changes(ctx(t), 0, 1, 0)
	if !providerclient.IsCode(err, providerapi.CodeSessionRevoked) {
		t.Fatalf("B's session after the revoke: %v", err)
	}
	_, err = b.ctl().Devices(ctx(t), addr)
	wantDevCtlErr(t, "B lists devices", err, http.StatusBadRequest, "revoked")
	// A goes on; B is gone from the list.
	if err := a.acct.Docs.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.ctl().Devices(ctx(t), addr); len(l.Devices) != 1 || l.Devices[0].ID != idA {
		t.Fatalf("after the revoke: %+v", l.Devices)
	}
	// B logs in again (same device id) and syncs.
	if _, err := b.Login(ctx(t), addr, []byte(password), p.Ref()); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.ctl().Devices(ctx(t), addr); len(l.Devices) != 2 {
		t.Fatalf("after B's new login: %+v", l.Devices)
	}
}

// TestDeleteAccount: a deletion says what it loses, needs the password
// and the confirmation, then removes everything of the account at the
// provider (login fails like an unknown account, the MX refuses the
// address with 550 5.1.1, signup of the login is refused) and its local
// data, and the other device is told.
func TestDeleteAccount(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	a := signup(t, p, "pia")
	b := login(t, p, "pia")
	signup(t, p, "quin")
	addr := a.acct.Address
	deliver(t, p, "x@sender.test", addr, plainMessage("x@sender.test", addr, "before", "hello"))
	waitIncomingDrained(t, p, "pia")
	testenv.Eventually(t, 30*time.Second, "the message on A", func() bool {
		ms, _ := a.acct.Mail.Messages("INBOX")
		return len(ms) == 1
	})
	sum, err := a.ctl().DeletionSummary(ctx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Mailboxes < 1 || sum.Messages != 1 || sum.Keys != 1 || sum.Devices != 2 {
		t.Fatalf("summary %+v", sum)
	}
	storePath := a.acct.StorePath()

	// Bad input: a wrong password, a confirmation that is not the
	// address. Nothing is deleted.
	err = a.ctl().DeleteAccount(ctx(t), controlapi.DeleteRequest{Address: addr, Password: "not the password", Confirm: addr})
	wantDevCtlErr(t, "deletion with a wrong password", err, http.StatusUnauthorized, "nothing was deleted")
	err = a.ctl().DeleteAccount(ctx(t), controlapi.DeleteRequest{Address: addr, Password: password, Confirm: "pia"})
	wantDevCtlErr(t, "deletion without the confirmation", err, http.StatusBadRequest, "nothing was deleted")
	if _, err := p.Store.User(ctx(t), "pia"); err != nil {
		t.Fatalf("the account after refused deletions: %v", err)
	}
	if _, err := os.Stat(storePath); err != nil {
		t.Fatal(err)
	}
	if err := b.acct.Docs.Sync(ctx(t)); err != nil {
		t.Fatal(err)
	}

	if err := a.ctl().DeleteAccount(ctx(t), controlapi.DeleteRequest{Address: addr, Password: password, Confirm: addr}); err != nil {
		t.Fatal(err)
	}
	// At the provider: nothing left but the tombstone.
	if _, err := p.Store.User(ctx(t), "pia"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user: %v", err)
	}
	if _, err := p.Store.Key(ctx(t), addr); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("published key: %v", err)
	}
	if _, err := p.Store.LastSeq(ctx(t), "pia"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("documents: %v", err)
	}
	if _, _, err := p.Store.ListIncoming(ctx(t), "pia", 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("incoming queue: %v", err)
	}
	if ss, _ := p.Store.Sessions(ctx(t), "pia"); len(ss) != 0 {
		t.Fatalf("sessions: %d", len(ss))
	}
	if _, err := p.Store.Tombstone(ctx(t), "pia"); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	// On this device: the account's data is gone.
	if _, err := os.Stat(storePath); !os.IsNotExist(err) {
		t.Fatalf("the local store after the deletion: %v", err)
	}
	if _, ok := a.Account(addr); ok {
		t.Fatal("A still holds the account")
	}
	// The MX refuses the address, and still takes mail for others.
	c := dialMX(t, p)
	if err := c.Mail("x@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt(addr, nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Fatalf("RCPT TO the deleted address: %v, want 550 5.1.1", err)
	}
	if err := c.Rcpt("quin@"+testenv.Domain, nil); err != nil {
		t.Fatalf("RCPT TO another user: %v", err)
	}
	c.Close()
	// Login fails like an unknown account; the login cannot be signed
	// up again.
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	if _, err := d.Login(ctx(t), addr, []byte(password), p.Ref()); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("login after the deletion: %v", err)
	}
	if _, err := d.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); !providerclient.IsCode(err, providerapi.CodeExists) {
		t.Fatalf("signup of the deleted login: %v", err)
	}
	// The other device is told and locks the account.
	st := waitState(t, b, addr, "deleted")
	if !strings.Contains(st.Sync.LastError, "deleted") {
		t.Fatalf("B's status: %+v", st)
	}
	_, err = b.acct.Client().Changes(ctx(t), 0, 1, 0)
	if !providerclient.IsCode(err, providerapi.CodeAccountDeleted) {
		t.Fatalf("B's session after the deletion: %v", err)
	}
}
