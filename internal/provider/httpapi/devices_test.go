package httpapi_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// loginDevice logs login in through a new client naming dev (nil: an
// older client that names none).
func loginDevice(t *testing.T, p *testenv.Provider, login string, dev *providerapi.Device) *providerclient.Client {
	t.Helper()
	c := testenv.NewClient(t, p)
	if dev != nil {
		c.SetDevice(*dev)
	}
	if _, err := c.Login(ctx(t), login, []byte(password)); err != nil {
		t.Fatalf("login %s: %v", login, err)
	}
	return c
}

func findDevice(ds []providerapi.DeviceInfo, id string) *providerapi.DeviceInfo {
	for i := range ds {
		if ds[i].ID == id {
			return &ds[i]
		}
	}
	return nil
}

func TestDevicesListRevoke(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	laptop := providerapi.Device{ID: "laptop-0123456789abcdef", Name: "laptop"}
	phone := providerapi.Device{ID: "phone-0123456789abcdef", Name: "phone"}

	// The signup's session is the laptop's.
	cl := testenv.NewClient(t, p)
	cl.SetDevice(laptop)
	_, cr := newSecretCreds(t, "dana")
	resp, err := cl.Signup(ctx(t), &providerapi.SignupRequest{Login: "dana", SRPSalt: cr.SRPSalt, SRPVerifier: cr.SRPVerifier, KDF: cr.KDF, WrappedSecret: cr.WrappedSecret, Device: &laptop})
	if err != nil {
		t.Fatal(err)
	}
	cl.SetToken(resp.Token)
	cp := loginDevice(t, p, "dana", &phone)
	old := loginDevice(t, p, "dana", nil)
	other := signup(t, p, "erin") // another user's device is never listed

	// The phone pulls: its last sync is recorded.
	if _, err := cp.Changes(ctx(t), 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	list, err := cl.Devices(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 3 {
		t.Fatalf("devices: %+v", list.Devices)
	}
	l, ph := findDevice(list.Devices, laptop.ID), findDevice(list.Devices, phone.ID)
	if l == nil || !l.Current || l.Name != "laptop" || l.Created.IsZero() {
		t.Fatalf("laptop: %+v", l)
	}
	if ph == nil || ph.Current || ph.Name != "phone" || ph.LastSync.IsZero() || time.Since(ph.LastSync) > time.Minute {
		t.Fatalf("phone: %+v", ph)
	}
	var unnamed *providerapi.DeviceInfo
	for i := range list.Devices {
		if list.Devices[i].Name == "unnamed device" {
			unnamed = &list.Devices[i]
		}
	}
	if unnamed == nil || len(unnamed.ID) != len("session-")+16 {
		t.Fatalf("the session without a device: %+v", list.Devices)
	}
	if ol, _ := other.c.Devices(ctx(t)); len(ol.Devices) != 1 {
		t.Fatalf("erin sees %+v", ol.Devices)
	}

	// A second pull within the minute writes nothing: the same time.
	before := ph.LastSync
	if _, err := cp.Changes(ctx(t), 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	list, _ = cl.Devices(ctx(t))
	if got := findDevice(list.Devices, phone.ID).LastSync; !got.Equal(before) {
		t.Fatalf("last sync moved within the minute: %v -> %v", before, got)
	}

	// Bad input: the device itself, an unknown device, another user's.
	_, err = cl.RevokeDevice(ctx(t), laptop.ID)
	if !providerclient.IsCode(err, providerapi.CodeCurrentDevice) {
		t.Fatalf("revoking the current device: %v", err)
	}
	for _, id := range []string{"nope-0123456789abcdef", laptop.ID} {
		if _, err := other.c.RevokeDevice(ctx(t), id); !providerclient.IsCode(err, providerapi.CodeNotFound) {
			t.Fatalf("revoking %s as erin: %v", id, err)
		}
	}
	if list, _ := cl.Devices(ctx(t)); len(list.Devices) != 3 {
		t.Fatalf("a refused revoke changed the devices: %+v", list.Devices)
	}

	// Revoke the phone while its event stream is open: the stream
	// closes, its next request is 401 session_revoked, and its client is
	// told.
	_, done := r.follow(cp.Token())
	var (
		mu   sync.Mutex
		told []string
	)
	cp.OnSessionEnded(func(code string) { mu.Lock(); told = append(told, code); mu.Unlock() })
	rv, err := cl.RevokeDevice(ctx(t), phone.ID)
	if err != nil || rv.Device.ID != phone.ID || rv.Device.Name != "phone" {
		t.Fatalf("revoke: %+v, %v", rv, err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the revoked device's event stream stayed open")
	}
	_, err = cp.Changes(ctx(t), 0, 10, 0)
	var ae *providerclient.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != providerapi.CodeSessionRevoked {
		t.Fatalf("the revoked device's pull: %v", err)
	}
	mu.Lock()
	if len(told) != 1 || told[0] != providerapi.CodeSessionRevoked {
		t.Fatalf("the client was told %v", told)
	}
	mu.Unlock()
	// Submission refuses its token too.
	if _, err := p.CheckToken(ctx(t), cp.Token()); err == nil {
		t.Fatal("the revoked token still authenticates")
	}
	list, _ = cl.Devices(ctx(t))
	if len(list.Devices) != 2 || findDevice(list.Devices, phone.ID) != nil {
		t.Fatalf("after the revoke: %+v", list.Devices)
	}
	// The laptop and the old client are untouched; the old client's
	// session can be revoked by its listed id.
	if _, err := old.Changes(ctx(t), 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RevokeDevice(ctx(t), unnamed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Changes(ctx(t), 0, 10, 0); !providerclient.IsCode(err, providerapi.CodeSessionRevoked) {
		t.Fatalf("the old client after its revoke: %v", err)
	}
	// A renewal keeps the device and when it first logged in.
	l = findDevice(list.Devices, laptop.ID)
	if _, err := cl.Renew(ctx(t)); err != nil {
		t.Fatal(err)
	}
	list, _ = cl.Devices(ctx(t))
	if len(list.Devices) != 1 || list.Devices[0].ID != laptop.ID || !list.Devices[0].Created.Equal(l.Created) || !list.Devices[0].Current {
		t.Fatalf("after the renewal: %+v (was %+v)", list.Devices, l)
	}
	// The phone logs in again: a new session of the same device.
	cp = loginDevice(t, p, "dana", &phone)
	if _, err := cp.Changes(ctx(t), 0, 10, 0); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceNamesAreChecked(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	signup(t, p, "fay")
	for _, d := range []providerapi.Device{
		{ID: "short", Name: "x"},
		{ID: "has space 0123456789", Name: "x"},
		{ID: "ok-0123456789abcdef", Name: ""},
		{ID: "ok-0123456789abcdef", Name: "   "},
		{ID: "ok-0123456789abcdef", Name: "bell\a"},
		{ID: "ok-0123456789abcdef", Name: string(make([]byte, 65))},
	} {
		c := testenv.NewClient(t, p)
		c.SetDevice(d)
		if _, err := c.Login(ctx(t), "fay", []byte(password)); !providerclient.IsCode(err, providerapi.CodeBadRequest) {
			t.Errorf("login with device %+q: %v, want bad_request", d, err)
		}
	}
	if ss, _ := p.Store.Sessions(ctx(t), "fay"); len(ss) != 1 {
		t.Fatalf("refused logins made sessions: %d", len(ss))
	}
}

func TestDeleteAccount(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	u := signup(t, p, "gus")
	keep := signup(t, p, "hal")
	other := loginDevice(t, p, "gus", &providerapi.Device{ID: "other-0123456789abcdef", Name: "other"})
	pub, _ := armoredKey(t, u.address())
	if err := u.c.PublishKey(ctx(t), pub); err != nil {
		t.Fatal(err)
	}
	blob := []byte("ciphertext of a message")
	if err := u.c.PutBlob(ctx(t), blobID(blob), blob); err != nil {
		t.Fatal(err)
	}
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "doc1", Rev: 1, Ciphertext: []byte("ct")}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Deliver(ctx(t), "gus", []byte("encrypted mail")); err != nil {
		t.Fatal(err)
	}
	kdf := u.cr.KDF

	// A wrong password deletes nothing and ends no session.
	if err := u.c.DeleteAccount(ctx(t), "gus", []byte("wrong password!"), kdf, nil); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("deletion with a wrong password: %v", err)
	}
	// A proof for another account (hal's handshake, hal's password) is
	// refused too.
	if err := u.c.DeleteAccount(ctx(t), "hal", []byte(password), kdf, nil); !providerclient.IsCode(err, providerapi.CodeBadRequest) {
		t.Fatalf("deletion with another account's handshake: %v", err)
	}
	// Without a proof at all.
	st, b := r.doJSON(http.MethodDelete, "/1/users/self", u.token, providerapi.DeleteAccountRequest{}, nil)
	wantErr(t, "deletion without a proof", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	if _, err := p.Store.User(ctx(t), "gus"); err != nil {
		t.Fatalf("gus after refused deletions: %v", err)
	}
	if _, err := u.c.Blob(ctx(t), blobID(blob)); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Changes(ctx(t), 0, 10, 0); err != nil {
		t.Fatal(err)
	}

	_, done := r.follow(other.Token())
	if err := u.c.DeleteAccount(ctx(t), "gus", []byte(password), kdf, nil); err != nil {
		t.Fatalf("deletion: %v", err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the other device's event stream stayed open")
	}
	for _, c := range []*providerclient.Client{u.c, other} {
		if _, err := c.Changes(ctx(t), 0, 10, 0); !providerclient.IsCode(err, providerapi.CodeAccountDeleted) {
			t.Fatalf("a request after the deletion: %v", err)
		}
	}
	// Everything is gone from the store.
	if _, err := p.Store.User(ctx(t), "gus"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user: %v", err)
	}
	if _, _, err := p.Store.Blob(ctx(t), "gus", blobID(blob)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("blob: %v", err)
	}
	if _, err := p.Store.Doc(ctx(t), "gus", "doc1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("doc: %v", err)
	}
	if items, _, err := p.Store.ListIncoming(ctx(t), "gus", 10); len(items) != 0 || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("incoming: %v, %v", items, err)
	}
	if _, err := p.Store.Key(ctx(t), u.address()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("key: %v", err)
	}
	st, b = r.do(http.MethodGet, "/1/keys?address="+u.address(), "", nil)
	wantErr(t, "nicknym after the deletion", st, b, http.StatusNotFound, providerapi.CodeNotFound)
	// Login fails as for an unknown account; signup of the login is
	// refused.
	if _, err := testenv.NewClient(t, p).Login(ctx(t), "gus", []byte(password)); !errors.Is(err, providerclient.ErrWrongPassword) {
		t.Fatalf("login after the deletion: %v", err)
	}
	if _, _, err := signupAccount(t, testenv.NewClient(t, p), "gus", ""); !providerclient.IsCode(err, providerapi.CodeExists) {
		t.Fatalf("signup of a deleted login: %v", err)
	}
	// Hal is untouched.
	if _, err := keep.c.Changes(ctx(t), 0, 10, 0); err != nil {
		t.Fatal(err)
	}
}
