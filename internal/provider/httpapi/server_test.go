package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/srp"
)

const password = "correct horse battery staple"

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// --- helpers

// user is an account signed up through internal/client, holding its
// first session.
type user struct {
	login  string
	c      *providerclient.Client
	token  string
	secret []byte
	cr     *providerapi.Credentials
}

func (u *user) address() string { return u.login + "@" + testenv.Domain }

// signupAccount signs up through internal/client with cheap KDF
// parameters, as Client.SignupAccount does.
func signupAccount(t testing.TB, c *providerclient.Client, login, invite string) (*user, *providerapi.SignupResponse, error) {
	t.Helper()
	secret, cr := newSecretCreds(t, login)
	resp, err := c.Signup(ctx(t), &providerapi.SignupRequest{
		Login: login, SRPSalt: cr.SRPSalt, SRPVerifier: cr.SRPVerifier,
		KDF: cr.KDF, WrappedSecret: cr.WrappedSecret, InviteCode: invite,
	})
	if err != nil {
		return nil, nil, err
	}
	c.SetToken(resp.Token)
	return &user{login: login, c: c, token: resp.Token, secret: secret, cr: cr}, resp, nil
}

func signup(t testing.TB, p *testenv.Provider, login string) *user {
	t.Helper()
	u, _, err := signupAccount(t, testenv.NewClient(t, p), login, "")
	if err != nil {
		t.Fatalf("signup %s: %v", login, err)
	}
	return u
}

// newCreds makes credentials with cheap KDF parameters.
func newCreds(t testing.TB, login string) *providerapi.Credentials {
	t.Helper()
	_, cr := newSecretCreds(t, login)
	return cr
}

// newSecretCreds makes a new storage secret and the credentials that
// wrap it, with cheap KDF parameters.
func newSecretCreds(t testing.TB, login string) ([]byte, *providerapi.Credentials) {
	t.Helper()
	kdf, err := seal.FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := seal.NewStorageSecret()
	if err != nil {
		t.Fatal(err)
	}
	cr, err := providerclient.NewCredentials(login, []byte(password), secret, kdf)
	if err != nil {
		t.Fatal(err)
	}
	return secret, cr
}

func signupBody(t testing.TB, login string, cr *providerapi.Credentials) []byte {
	t.Helper()
	return mustJSON(t, providerapi.SignupRequest{
		Login: login, SRPSalt: cr.SRPSalt, SRPVerifier: cr.SRPVerifier,
		KDF: cr.KDF, WrappedSecret: cr.WrappedSecret,
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func blobID(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func bearer(tok string) string { return "Bearer " + tok }

// raw speaks HTTP to the provider without internal/client, trusting only
// the provider's CA.
type raw struct {
	t    testing.TB
	p    *testenv.Provider
	pool *x509.CertPool
	hc   *http.Client
}

func newRaw(t testing.TB, p *testenv.Provider) *raw {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.TLSFiles().CACertPEM) {
		t.Fatal("provider CA is not PEM")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &raw{t: t, p: p, pool: pool, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// do sends one request; auth is the whole Authorization header value
// (empty: none). It returns the status and (for anything but an event
// stream) the body.
func (r *raw) do(method, path, auth string, body []byte) (int, []byte) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx(r.t), method, r.p.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		r.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// doJSON sends in (a []byte as is, anything else as JSON) and decodes a
// 2xx answer into out.
func (r *raw) doJSON(method, path, tok string, in, out any) (int, []byte) {
	r.t.Helper()
	var body []byte
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	default:
		body = mustJSON(r.t, v)
	}
	auth := ""
	if tok != "" {
		auth = bearer(tok)
	}
	st, b := r.do(method, path, auth, body)
	if out != nil && st/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return st, b
}

// wantErr checks an error answer: the status, and a JSON api.Error with
// a message and the code.
func wantErr(t testing.TB, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: HTTP %d, want %d (body %.300q)", what, status, wantStatus, body)
		return
	}
	var e providerapi.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Code != wantCode {
		t.Errorf("%s: error body %.300q, want a message with code %q", what, body, wantCode)
	}
}

// alive checks the provider still answers.
func (r *raw) alive() {
	r.t.Helper()
	st, b := r.do(http.MethodGet, "/provider.json", "", nil)
	var pj providerapi.ProviderJSON
	if st != http.StatusOK || json.Unmarshal(b, &pj) != nil || pj.Domain != testenv.Domain {
		r.t.Fatalf("provider no longer serves provider.json: HTTP %d %.200q", st, b)
	}
}

// noUser checks that login was not stored: the store does not have it,
// and a login start is answered as for an unknown login (not with the
// KDF salt of cr), with a proof that fails.
func (r *raw) noUser(login string, cr *providerapi.Credentials) {
	r.t.Helper()
	if _, err := r.p.Store.User(ctx(r.t), login); !errors.Is(err, storage.ErrNotFound) {
		r.t.Errorf("user %q: store says %v, want not found", login, err)
	}
	if !httpapi.ValidLogin(login) {
		return
	}
	cl, err := srp.StartClient(srp.DefaultParams(), []byte(login))
	if err != nil {
		r.t.Fatal(err)
	}
	var start providerapi.LoginStartResponse
	st, b := r.doJSON(http.MethodPost, "/1/sessions", "", providerapi.LoginStartRequest{Login: login, A: cl.A()}, &start)
	if st != http.StatusOK {
		r.t.Fatalf("login start for %q: HTTP %d %.200q", login, st, b)
	}
	if cr != nil && bytes.Equal(start.KDF.Salt, cr.KDF.Salt) {
		r.t.Errorf("login start for %q answers with the KDF salt of the refused signup: it was stored", login)
	}
	m1 := make([]byte, 32)
	_, _ = rand.Read(m1)
	st, b = r.doJSON(http.MethodPost, "/1/sessions/"+start.Handshake, "", providerapi.LoginFinishRequest{M1: m1}, nil)
	wantErr(r.t, "proof for "+login, st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
}

// follow reads the notification stream of tok, sending its change events
// on the returned channel until the test ends; the error channel reports
// the end of the stream.
func (r *raw) follow(tok string) (<-chan providerapi.Event, <-chan error) {
	r.t.Helper()
	sctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, r.p.URL+"/1/events", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer(tok))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Transport: r.hc.Transport}).Do(req)
	if err != nil {
		cancel()
		r.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		cancel()
		r.t.Fatalf("event stream: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events, done, exited := make(chan providerapi.Event, 16), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				event = ""
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "change":
				var ev providerapi.Event
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					done <- fmt.Errorf("event %q: %w", line, err)
					return
				}
				select {
				case events <- ev:
				case <-sctx.Done():
					return
				}
			}
		}
		done <- fmt.Errorf("stream ended: %v", sc.Err())
	}()
	r.t.Cleanup(func() { cancel(); <-exited })
	return events, done
}

// allChanges reads the whole changes feed of the token's user.
func (r *raw) allChanges(tok string) []providerapi.Doc {
	r.t.Helper()
	var out []providerapi.Doc
	since := uint64(0)
	for {
		var ch providerapi.ChangesResponse
		st, b := r.doJSON(http.MethodGet, fmt.Sprintf("/1/docs/changes?since=%d", since), tok, nil, &ch)
		if st != http.StatusOK {
			r.t.Fatalf("changes: HTTP %d %.200q", st, b)
		}
		out = append(out, ch.Changes...)
		since = ch.LastSeq
		if !ch.More {
			return out
		}
	}
}

func docIDs(docs []providerapi.Doc) []string {
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	return ids
}

// --- 1. isolation between users

func TestOtherUsersDataIsInvisible(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	alice := signup(t, p, "alice")
	bob := signup(t, p, "bob")
	r := newRaw(t, p)

	// Alice's documents and blob.
	res, err := alice.c.Push(ctx(t), []providerapi.DocPush{
		{ID: "doc-a1", Rev: 1, Ciphertext: []byte("alice ciphertext 1")},
		{ID: "doc-a2", Rev: 1, Ciphertext: []byte("alice ciphertext 2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res.Results {
		if x.Status != providerapi.PushOK {
			t.Fatalf("alice's push: %+v", x)
		}
	}
	blob := []byte("alice's encrypted attachment")
	bid := blobID(blob)
	if err := alice.c.PutBlob(ctx(t), bid, blob); err != nil {
		t.Fatal(err)
	}
	aliceFeed, err := alice.c.Changes(ctx(t), 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Bob's own document, so his feed is not trivially empty.
	if res, err := bob.c.Push(ctx(t), []providerapi.DocPush{{ID: "doc-b1", Rev: 1, Ciphertext: []byte("bob ciphertext")}}); err != nil || res.Results[0].Status != providerapi.PushOK {
		t.Fatalf("bob's push: %v %+v", err, res)
	}

	// Bob's notification stream: the first event is his own sequence.
	events, done := r.follow(bob.token)
	next := func(what string) providerapi.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case err := <-done:
			t.Fatalf("%s: bob's event stream ended: %v", what, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no event on bob's stream", what)
		}
		return providerapi.Event{}
	}
	bobSeq, err := p.Store.LastSeq(ctx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got := next("first event"); got.Seq != bobSeq {
		t.Fatalf("bob's first event has seq %d, want his own %d", got.Seq, bobSeq)
	}

	// The changes feed holds only bob's document.
	ch, err := bob.c.Changes(ctx(t), 0, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ids := docIDs(ch.Changes); len(ids) != 1 || ids[0] != "doc-b1" {
		t.Fatalf("bob's changes feed: %v, want only doc-b1", ids)
	}
	for _, d := range ch.Changes {
		if strings.Contains(string(d.Ciphertext), "alice") {
			t.Fatalf("bob's feed carries alice's ciphertext: %+v", d)
		}
	}

	// Alice's document and blob are not found for bob.
	for _, id := range []string{"doc-a1", "doc-a2"} {
		if d, err := bob.c.Doc(ctx(t), id); !providerclient.IsCode(err, providerapi.CodeNotFound) {
			t.Errorf("bob GET /1/docs/%s: %+v, %v; want not found", id, d, err)
		}
	}
	if b, err := bob.c.Blob(ctx(t), bid); !providerclient.IsCode(err, providerapi.CodeNotFound) {
		t.Errorf("bob GET alice's blob: %q, %v; want not found", b, err)
	}

	// Pushing on top of alice's revision is a conflict that does not
	// show alice's document.
	res, err = bob.c.Push(ctx(t), []providerapi.DocPush{{ID: "doc-a2", BaseRev: 1, Rev: 2, Ciphertext: []byte("bob overwrites")}})
	if err != nil {
		t.Fatal(err)
	}
	if x := res.Results[0]; x.Status != providerapi.PushConflict || x.Current != nil || x.Rev != 0 {
		t.Errorf("bob pushing doc-a2 at alice's rev 1: %+v (current %+v); want a conflict with nothing current", x, x.Current)
	}
	// Pushing alice's id as new makes bob's own document.
	res, err = bob.c.Push(ctx(t), []providerapi.DocPush{{ID: "doc-a1", BaseRev: 0, Rev: 1, Ciphertext: []byte("bob's doc-a1")}})
	if err != nil {
		t.Fatal(err)
	}
	if x := res.Results[0]; x.Status != providerapi.PushOK {
		t.Errorf("bob pushing his own doc-a1: %+v", x)
	}
	if d, err := bob.c.Doc(ctx(t), "doc-a1"); err != nil || string(d.Ciphertext) != "bob's doc-a1" {
		t.Errorf("bob's doc-a1: %+v, %v", d, err)
	}
	for i, want := range []string{"alice ciphertext 1", "alice ciphertext 2"} {
		id := fmt.Sprintf("doc-a%d", i+1)
		d, err := alice.c.Doc(ctx(t), id)
		if err != nil || d.Rev != 1 || string(d.Ciphertext) != want || d.Deleted {
			t.Errorf("alice's %s after bob's pushes: %+v, %v; want rev 1 %q", id, d, err, want)
		}
	}
	if got, err := alice.c.Blob(ctx(t), bid); err != nil || !bytes.Equal(got, blob) {
		t.Errorf("alice's blob: %q, %v", got, err)
	}
	// Bob's pushes did not move alice's sequence.
	if af, err := alice.c.Changes(ctx(t), 0, 100, 0); err != nil || af.LastSeq != aliceFeed.LastSeq || len(af.Changes) != 2 {
		t.Errorf("alice's feed after bob's pushes: %+v, %v; want %+v", af, err, aliceFeed)
	}

	// The secret is bob's own.
	sec, err := bob.c.Secret(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sec.WrappedSecret, bob.cr.WrappedSecret) || !bytes.Equal(sec.KDF.Salt, bob.cr.KDF.Salt) {
		t.Errorf("bob's secret is not the one he signed up with")
	}
	if bytes.Equal(sec.WrappedSecret, alice.cr.WrappedSecret) {
		t.Errorf("bob got alice's wrapped secret")
	}

	// Bob's own pushes above woke his stream; drain those events (the
	// notifier keeps only the newest per subscriber, so there may be
	// one or two), then check alice's push does not wake him.
	bobSeq, err = p.Store.LastSeq(ctx(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	for got := next("bob's own push"); got.Seq != bobSeq; got = next("bob's own push") {
	}
	if _, err := alice.c.Push(ctx(t), []providerapi.DocPush{{ID: "doc-a1", BaseRev: 1, Rev: 2, Ciphertext: []byte("alice ciphertext 1b")}}); err != nil {
		t.Fatal(err)
	}
	// Mail for alice does not wake bob either.
	if err := p.Deliver(ctx(t), "alice", []byte("-----BEGIN PGP MESSAGE-----\nfor alice\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		t.Errorf("alice's push or mail woke bob's event stream (%+v)", ev)
	case err := <-done:
		t.Fatalf("bob's event stream ended: %v", err)
	case <-time.After(time.Second):
	}
	// A push of bob's still does wake him: the stream is alive.
	res, err = bob.c.Push(ctx(t), []providerapi.DocPush{{ID: "doc-b2", Rev: 1, Ciphertext: []byte("bob again")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := next("bob's push"); got.Seq != res.Results[0].Seq || got.Incoming != 0 {
		t.Errorf("bob's stream after his push: %+v, want seq %d and no incoming", got, res.Results[0].Seq)
	}

	// Alice's incoming mail is hers alone.
	var list providerapi.IncomingList
	if st, b := r.doJSON(http.MethodGet, "/1/incoming", alice.token, nil, &list); st != http.StatusOK || len(list.Items) != 1 {
		t.Fatalf("alice's incoming: HTTP %d %.200q", st, b)
	}
	inID := list.Items[0].ID
	if st, b := r.doJSON(http.MethodGet, "/1/incoming", bob.token, nil, &list); st != http.StatusOK || len(list.Items) != 0 {
		t.Errorf("bob's incoming lists alice's mail: HTTP %d %.200q", st, b)
	}
	st, b := r.do(http.MethodGet, "/1/incoming/"+inID, bearer(bob.token), nil)
	wantErr(t, "bob GET alice's incoming item", st, b, http.StatusNotFound, providerapi.CodeNotFound)
	if st, b := r.do(http.MethodDelete, "/1/incoming/"+inID, bearer(bob.token), nil); st/100 != 2 && st != http.StatusNotFound {
		t.Errorf("bob DELETE alice's incoming item: HTTP %d %.200q", st, b)
	}
	if st, b := r.do(http.MethodGet, "/1/incoming/"+inID, bearer(alice.token), nil); st != http.StatusOK || !strings.Contains(string(b), "for alice") {
		t.Errorf("alice's incoming item after bob's delete: HTTP %d %.200q", st, b)
	}

	// And raw requests with bob's token for alice's things, for good
	// measure through another HTTP stack.
	st, b = r.do(http.MethodGet, "/1/docs/doc-a2", bearer(bob.token), nil)
	wantErr(t, "raw GET alice's doc as bob", st, b, http.StatusNotFound, providerapi.CodeNotFound)
	st, b = r.do(http.MethodGet, "/1/blobs/"+bid, bearer(bob.token), nil)
	wantErr(t, "raw GET alice's blob as bob", st, b, http.StatusNotFound, providerapi.CodeNotFound)
}

// armoredKey makes a new key for address and returns it armored: the
// public key, and the private one.
func armoredKey(t testing.TB, address string) (pub, priv string) {
	t.Helper()
	e, err := pgpkey.Generate(address, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pub, err = pgpkey.ArmorPublic(e); err != nil {
		t.Fatal(err)
	}
	if priv, err = pgpkey.ArmorPrivate(e); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// authedEndpoints are all the endpoints that need a session, with bodies
// that would be accepted with a valid one.
func authedEndpoints(t testing.TB, u *user, incomingID string) []struct {
	method, path string
	body         []byte
} {
	cr := newCreds(t, u.login)
	pub, _ := armoredKey(t, u.address())
	blob := []byte("refused blob of " + u.login)
	return []struct {
		method, path string
		body         []byte
	}{
		{http.MethodDelete, "/1/sessions/current", nil},
		{http.MethodPost, "/1/sessions/current/renew", nil},
		{http.MethodPut, "/1/users/self", mustJSON(t, cr)},
		{http.MethodGet, "/1/users/self/secret", nil},
		{http.MethodPost, "/1/docs", mustJSON(t, providerapi.PushRequest{Docs: []providerapi.DocPush{{ID: "refused", Rev: 1, Ciphertext: []byte("x")}}})},
		{http.MethodGet, "/1/docs/changes", nil},
		{http.MethodGet, "/1/docs/changes?since=0&limit=10&wait=1", nil},
		{http.MethodGet, "/1/docs/refused", nil},
		{http.MethodPut, "/1/blobs/" + blobID(blob), blob},
		{http.MethodGet, "/1/blobs/" + blobID(blob), nil},
		{http.MethodGet, "/1/events", nil},
		{http.MethodGet, "/1/incoming", nil},
		{http.MethodGet, "/1/incoming/" + incomingID, nil},
		{http.MethodDelete, "/1/incoming/" + incomingID, nil},
		{http.MethodPut, "/1/keys", mustJSON(t, providerapi.KeyRequest{OpenPGP: pub})},
	}
}

// refusedEverywhere checks every authenticated endpoint answers 401 to
// the Authorization header auth, and that nothing of u changed.
func refusedEverywhere(t *testing.T, r *raw, u *user, what, auth string) {
	t.Helper()
	// A message waiting for u, which a refused DELETE must not remove.
	items, _, err := r.p.Store.ListIncoming(ctx(t), u.login, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		if err := r.p.Deliver(ctx(t), u.login, []byte("mail for "+u.login)); err != nil {
			t.Fatal(err)
		}
		if items, _, err = r.p.Store.ListIncoming(ctx(t), u.login, 1); err != nil || len(items) != 1 {
			t.Fatalf("incoming after a delivery: %v, %v", items, err)
		}
	}
	eps := authedEndpoints(t, u, items[0].ID)
	for _, ep := range eps {
		st, b := r.do(ep.method, ep.path, auth, ep.body)
		wantErr(t, fmt.Sprintf("%s: %s %s", what, ep.method, ep.path), st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
	}
	// Nothing was stored or changed.
	su, err := r.p.Store.User(ctx(t), u.login)
	if err != nil || !bytes.Equal(su.WrappedSecret, u.cr.WrappedSecret) || !bytes.Equal(su.SRPVerifier, u.cr.SRPVerifier) {
		t.Errorf("%s: %s's credentials changed (%v)", what, u.login, err)
	}
	if d, err := r.p.Store.Doc(ctx(t), u.login, "refused"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: a refused push stored %+v (%v)", what, d, err)
	}
	if _, _, err := r.p.Store.Blob(ctx(t), u.login, blobID([]byte("refused blob of "+u.login))); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: a refused blob upload was stored (%v)", what, err)
	}
	if _, err := r.p.Store.Key(ctx(t), u.address()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: a refused key was published (%v)", what, err)
	}
	if _, err := r.p.Store.Incoming(ctx(t), u.login, items[0].ID); err != nil {
		t.Errorf("%s: a refused delete removed incoming mail (%v)", what, err)
	}
	r.alive()
}

func TestEndpointsRefuseWithoutValidSession(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	carol := signup(t, p, "carol")

	for _, c := range []struct{ what, auth string }{
		{"no token", ""},
		{"empty bearer", "Bearer "},
		{"malformed token", "Bearer not-a-token"},
		{"tampered token", bearer(carol.token + "0")},
		{"truncated token", bearer(carol.token[:len(carol.token)-1])},
		{"overlong token", bearer(strings.Repeat("a", 300))},
		{"basic auth", "Basic " + carol.token},
		{"token without scheme", carol.token},
	} {
		refusedEverywhere(t, r, carol, c.what, c.auth)
	}
	// Carol's real token still works: the refusals above were about the
	// token, not the requests.
	if _, err := carol.c.Secret(ctx(t)); err != nil {
		t.Fatalf("carol's valid token: %v", err)
	}

	// A logged-out token.
	dave := signup(t, p, "dave")
	if err := dave.c.Logout(ctx(t)); err != nil {
		t.Fatal(err)
	}
	refusedEverywhere(t, r, dave, "logged-out token", bearer(dave.token))
	// Dave can log in again, and the new session works.
	dc := testenv.NewClient(t, p)
	if _, err := dc.Login(ctx(t), "dave", []byte(password)); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Secret(ctx(t)); err != nil {
		t.Fatalf("dave's new session: %v", err)
	}

	// A token swapped for a fresh one by a renewal.
	old := dc.Token()
	if _, err := dc.Renew(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if dc.Token() == old {
		t.Fatal("renewal kept the token")
	}
	refusedEverywhere(t, r, dave, "renewed-away token", bearer(old))
	if _, err := dc.Secret(ctx(t)); err != nil {
		t.Fatalf("dave's renewed session: %v", err)
	}

	// A session ended by a password change made in another session.
	other := testenv.NewClient(t, p)
	if _, err := other.Login(ctx(t), "carol", []byte(password)); err != nil {
		t.Fatal(err)
	}
	cr2 := newCreds(t, "carol")
	if err := carol.c.SetCredentials(ctx(t), cr2); err != nil {
		t.Fatal(err)
	}
	carol.cr = cr2
	refusedEverywhere(t, r, carol, "session ended by a password change", bearer(other.Token()))
	if _, err := carol.c.Secret(ctx(t)); err != nil {
		t.Fatalf("the session that changed the password: %v", err)
	}

	// An expired token, on a provider with very short sessions.
	p2 := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{SessionTTL: time.Millisecond}})
	r2 := newRaw(t, p2)
	erin, resp, err := signupAccount(t, testenv.NewClient(t, p2), "erin", "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(resp.Expires) + 10*time.Millisecond)
	refusedEverywhere(t, r2, erin, "expired token", bearer(erin.token))
}

// --- 2. bad input

func TestBadInputIsRefusedAndNotStored(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	cr := newCreds(t, "x")
	frank := signup(t, p, "frank")

	t.Run("malformed JSON", func(t *testing.T) {
		good := signupBody(t, "mal", cr)
		for _, c := range []struct {
			what string
			body []byte
		}{
			{"empty", []byte{}},
			{"not JSON", []byte("login=mal&password=x")},
			{"truncated", good[:len(good)/2]},
			{"wrong type", []byte(`{"login":"mal","srp_salt":5}`)},
			{"bad base64", bytes.Replace(good, []byte(`"srp_salt":"`), []byte(`"srp_salt":"!!`), 1)},
			{"trailing garbage", append(append([]byte{}, good...), " garbage"...)},
			{"trailing value", append(append([]byte{}, good...), "{}"...)},
			{"two objects", append(append([]byte{}, good...), good...)},
		} {
			st, b := r.do(http.MethodPost, "/1/users", "", c.body)
			wantErr(t, "signup, "+c.what, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
			st, b = r.do(http.MethodPost, "/1/sessions", "", c.body)
			wantErr(t, "login start, "+c.what, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
			st, b = r.do(http.MethodPost, "/1/docs", bearer(frank.token), c.body)
			wantErr(t, "push, "+c.what, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		}
		r.noUser("mal", cr)
		for _, c := range []struct{ what, body string }{
			{"truncated", `{"docs":[{"id":"m1","rev":1,"ciphertext":"YQ=="}]`},
			{"trailing garbage", `{"docs":[{"id":"m1","rev":1,"ciphertext":"YQ=="}]}x`},
			{"trailing value", `{"docs":[{"id":"m1","rev":1,"ciphertext":"YQ=="}]}{}`},
			{"docs not a list", `{"docs":"m1"}`},
			{"bad base64", `{"docs":[{"id":"m1","rev":1,"ciphertext":"@@"}]}`},
			{"negative rev", `{"docs":[{"id":"m1","rev":-1,"ciphertext":"YQ=="}]}`},
		} {
			st, b := r.do(http.MethodPost, "/1/docs", bearer(frank.token), []byte(c.body))
			wantErr(t, "push, "+c.what, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		}
		if docs := r.allChanges(frank.token); len(docs) != 0 {
			t.Errorf("refused pushes stored %v", docIDs(docs))
		}
		// Trailing white space is fine: the check above is about data.
		st, b := r.do(http.MethodPost, "/1/users", "", append(signupBody(t, "ws-ok", cr), " \n\t"...))
		if st != http.StatusCreated {
			t.Errorf("signup with trailing white space: HTTP %d %.200q", st, b)
		}
		r.alive()
	})

	t.Run("oversized body", func(t *testing.T) {
		huge := []byte(`{"login":"huge","srp_salt":"` + strings.Repeat("A", 2<<20) + `"}`)
		st, b := r.do(http.MethodPost, "/1/users", "", huge)
		wantErr(t, "2 MiB signup", st, b, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge)
		r.noUser("huge", nil)
		st, b = r.do(http.MethodPost, "/1/sessions", "", []byte(`{"login":"frank","A":"`+strings.Repeat("A", 2<<20)+`"}`))
		wantErr(t, "2 MiB login start", st, b, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge)
		st, b = r.do(http.MethodPut, "/1/keys", bearer(frank.token), []byte(`{"openpgp":"`+strings.Repeat("A", 2<<20)+`"}`))
		wantErr(t, "2 MiB key", st, b, http.StatusRequestEntityTooLarge, providerapi.CodeTooLarge)
		r.alive()
	})

	t.Run("truncated body", func(t *testing.T) {
		// A complete, valid signup, announced as longer than it is: the
		// provider must not act on it.
		body := signupBody(t, "trunc", cr)
		conn, err := tls.Dial("tcp", p.Addr, &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(conn, "POST /1/users HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", p.Addr, len(body)+100)
		if _, err := conn.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := conn.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantErr(t, "truncated signup", resp.StatusCode, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		} else {
			t.Logf("no answer to the truncated request (%v)", err)
		}
		r.noUser("trunc", cr)
		r.alive()
		// The same body, whole, is fine.
		st, b := r.do(http.MethodPost, "/1/users", "", body)
		if st != http.StatusCreated {
			t.Errorf("whole signup: HTTP %d %.200q", st, b)
		}
	})

	t.Run("invalid logins", func(t *testing.T) {
		for _, login := range []string{"Alice", "a", strings.Repeat("x", 65), "a/b", "", "al ice", "ålice", "bob@example.test", "../x"} {
			st, b := r.do(http.MethodPost, "/1/users", "", signupBody(t, login, cr))
			wantErr(t, fmt.Sprintf("signup %q", login), st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
			st, b = r.doJSON(http.MethodPost, "/1/sessions", "", providerapi.LoginStartRequest{Login: login, A: []byte{2}}, nil)
			wantErr(t, fmt.Sprintf("login start %q", login), st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
			r.noUser(login, cr)
		}
		// The bounds themselves are valid.
		for _, login := range []string{"ab", strings.Repeat("y", 64), "a.b-c_d9"} {
			st, b := r.do(http.MethodPost, "/1/users", "", signupBody(t, login, cr))
			if st != http.StatusCreated {
				t.Errorf("signup %q: HTTP %d %.200q", login, st, b)
			}
		}
		// Invalid credentials are refused too.
		bad := *cr
		bad.KDF.MemoryKiB = 1
		st, b := r.do(http.MethodPost, "/1/users", "", signupBody(t, "badkdf", &bad))
		wantErr(t, "signup with a bad KDF", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		r.noUser("badkdf", &bad)
		bad = *cr
		bad.WrappedSecret = nil
		st, b = r.do(http.MethodPost, "/1/users", "", signupBody(t, "nosecret", &bad))
		wantErr(t, "signup without a wrapped secret", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		r.noUser("nosecret", &bad)
	})

	t.Run("invalid documents", func(t *testing.T) {
		ok := providerapi.DocPush{ID: "fine", Rev: 1, Ciphertext: []byte("fine")}
		for _, id := range []string{"", "a/b", "a.b", "a b", strings.Repeat("x", 129), "ü", "a\x00b"} {
			st, b := r.doJSON(http.MethodPost, "/1/docs", frank.token, providerapi.PushRequest{Docs: []providerapi.DocPush{ok, {ID: id, Rev: 1, Ciphertext: []byte("x")}}}, nil)
			wantErr(t, fmt.Sprintf("push id %q", id), st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
			if id == "" || strings.Contains(id, "/") {
				continue
			}
			st, b = r.do(http.MethodGet, "/1/docs/"+url.PathEscape(id), bearer(frank.token), nil)
			wantErr(t, fmt.Sprintf("GET doc %q", id), st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		}
		st, b := r.do(http.MethodGet, "/1/docs/a%2Fb", bearer(frank.token), nil)
		wantErr(t, "GET doc a/b", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		for _, c := range []struct{ what, body string }{
			{"no docs", `{}`},
			{"null docs", `{"docs":null}`},
			{"empty docs", `{"docs":[]}`},
			{"empty ciphertext", `{"docs":[{"id":"fine","rev":1,"ciphertext":""}]}`},
			{"no ciphertext", `{"docs":[{"id":"fine","rev":1}]}`},
			{"tombstone without ciphertext", `{"docs":[{"id":"fine","rev":1,"deleted":true}]}`},
		} {
			st, b := r.do(http.MethodPost, "/1/docs", bearer(frank.token), []byte(c.body))
			wantErr(t, "push, "+c.what, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		}
		if docs := r.allChanges(frank.token); len(docs) != 0 {
			t.Fatalf("refused pushes stored %v", docIDs(docs))
		}

		// A revision that is not base_rev+1 is a conflict and is not
		// stored, for a new document and for an existing one.
		var pr providerapi.PushResponse
		st, b = r.doJSON(http.MethodPost, "/1/docs", frank.token, providerapi.PushRequest{Docs: []providerapi.DocPush{
			{ID: "skip", BaseRev: 0, Rev: 2, Ciphertext: []byte("skip")},
			{ID: "same", BaseRev: 0, Rev: 0, Ciphertext: []byte("same")},
			{ID: "exists", BaseRev: 0, Rev: 1, Ciphertext: []byte("exists v1")},
		}}, &pr)
		if st != http.StatusOK || len(pr.Results) != 3 {
			t.Fatalf("push: HTTP %d %.300q", st, b)
		}
		for _, x := range pr.Results[:2] {
			if x.Status != providerapi.PushConflict || x.Rev != 0 || x.Current != nil {
				t.Errorf("push of %s with rev != base_rev+1: %+v", x.ID, x)
			}
		}
		if pr.Results[2].Status != providerapi.PushOK {
			t.Fatalf("push of a new document: %+v", pr.Results[2])
		}
		st, b = r.doJSON(http.MethodPost, "/1/docs", frank.token, providerapi.PushRequest{Docs: []providerapi.DocPush{
			{ID: "exists", BaseRev: 1, Rev: 3, Ciphertext: []byte("exists v3")},
		}}, &pr)
		if st != http.StatusOK {
			t.Fatalf("push: HTTP %d %.300q", st, b)
		}
		if x := pr.Results[0]; x.Status != providerapi.PushConflict || x.Rev != 1 || x.Current == nil || string(x.Current.Ciphertext) != "exists v1" {
			t.Errorf("push of rev 3 on rev 1: %+v", x)
		}
		docs := r.allChanges(frank.token)
		if len(docs) != 1 || docs[0].ID != "exists" || docs[0].Rev != 1 || string(docs[0].Ciphertext) != "exists v1" {
			t.Errorf("frank's feed: %+v, want only exists at rev 1", docs)
		}
		r.alive()
	})

	t.Run("invalid blobs", func(t *testing.T) {
		data := []byte("some blob")
		id := blobID(data)
		for _, bad := range []string{strings.ToUpper(id), id[:63], id + "0", strings.Repeat("g", 64), "x", id[:32] + "-" + id[33:]} {
			st, b := r.do(http.MethodPut, "/1/blobs/"+bad, bearer(frank.token), data)
			wantErr(t, "PUT blob "+bad, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
			st, b = r.do(http.MethodGet, "/1/blobs/"+bad, bearer(frank.token), nil)
			wantErr(t, "GET blob "+bad, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		}
		st, b := r.do(http.MethodPut, "/1/blobs/"+id, bearer(frank.token), []byte{})
		wantErr(t, "PUT empty blob", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		st, b = r.do(http.MethodGet, "/1/blobs/"+id, bearer(frank.token), nil)
		wantErr(t, "GET the refused empty blob", st, b, http.StatusNotFound, providerapi.CodeNotFound)
		// Blobs are immutable: a second upload under the id is a no-op.
		if err := frank.c.PutBlob(ctx(t), id, data); err != nil {
			t.Fatal(err)
		}
		if err := frank.c.PutBlob(ctx(t), id, []byte("other content")); err != nil {
			t.Fatal(err)
		}
		if got, err := frank.c.Blob(ctx(t), id); err != nil || !bytes.Equal(got, data) {
			t.Errorf("blob after a second upload: %q, %v", got, err)
		}
		r.alive()
	})

	t.Run("handshakes", func(t *testing.T) {
		m1 := make([]byte, 32)
		for _, id := range []string{"unknown", strings.Repeat("0", 32), "x"} {
			st, b := r.doJSON(http.MethodPost, "/1/sessions/"+id, "", providerapi.LoginFinishRequest{M1: m1}, nil)
			wantErr(t, "proof for handshake "+id, st, b, http.StatusUnauthorized, providerapi.CodeUnauthorized)
		}
		c := testenv.NewClient(t, p)
		// prove runs a login start for frank and returns the handshake
		// and the right proof.
		prove := func() (string, []byte) {
			cl, err := srp.StartClient(srp.DefaultParams(), []byte("frank"))
			if err != nil {
				t.Fatal(err)
			}
			start, err := c.LoginStart(ctx(t), "frank", cl.A())
			if err != nil {
				t.Fatal(err)
			}
			pk, err := seal.DerivePasswordKeys([]byte(password), start.KDF)
			if err != nil {
				t.Fatal(err)
			}
			m1, err := cl.RespondX(pk.SRPSecret, start.SRPSalt, start.B)
			if err != nil {
				t.Fatal(err)
			}
			return start.Handshake, m1
		}
		// A wrong proof uses up the handshake: the right one after it
		// is refused.
		hs, good := prove()
		bad := append([]byte(nil), good...)
		bad[0] ^= 1
		if _, err := c.LoginFinish(ctx(t), hs, bad); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
			t.Fatalf("wrong proof: %v", err)
		}
		if _, err := c.LoginFinish(ctx(t), hs, good); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
			t.Errorf("right proof on a used handshake: %v, want unauthorized", err)
		}
		// A right proof uses it up too.
		hs, good = prove()
		fin, err := c.LoginFinish(ctx(t), hs, good)
		if err != nil {
			t.Fatal(err)
		}
		if fin, err := c.LoginFinish(ctx(t), hs, good); !providerclient.IsCode(err, providerapi.CodeUnauthorized) {
			t.Errorf("replayed proof: %+v, %v; want unauthorized", fin, err)
		}
		// The session of the one good proof works.
		var sec providerapi.SecretResponse
		if st, b := r.doJSON(http.MethodGet, "/1/users/self/secret", fin.Token, nil, &sec); st != http.StatusOK || !bytes.Equal(sec.WrappedSecret, frank.cr.WrappedSecret) {
			t.Errorf("session from the proof: HTTP %d %.200q", st, b)
		}
		// Malformed proofs.
		hs, _ = prove()
		st, b := r.do(http.MethodPost, "/1/sessions/"+hs, "", []byte(`{"M1":`))
		wantErr(t, "malformed proof", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
		r.alive()
	})

	// After all that, the provider still signs up and serves.
	g := signup(t, p, "grace")
	if _, err := g.c.Push(ctx(t), []providerapi.DocPush{{ID: "after", Rev: 1, Ciphertext: []byte("after")}}); err != nil {
		t.Fatal(err)
	}
}

// --- 3. enrollment

func TestEnrollmentPolicy(t *testing.T) {
	closed := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Enrollment: providerapi.EnrollClosed}})
	rc := newRaw(t, closed)
	c := testenv.NewClient(t, closed)
	if _, _, err := signupAccount(t, c, "henry", ""); !providerclient.IsCode(err, providerapi.CodeEnrollment) {
		t.Errorf("signup at a closed provider: %v, want %s", err, providerapi.CodeEnrollment)
	}
	var ae *providerclient.APIError
	if _, _, err := signupAccount(t, c, "henry", "any-code"); !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Code != providerapi.CodeEnrollment {
		t.Errorf("signup with a code at a closed provider: %v, want 403 %s", err, providerapi.CodeEnrollment)
	}
	rc.noUser("henry", nil)
	var pj providerapi.ProviderJSON
	if st, _ := rc.doJSON(http.MethodGet, "/provider.json", "", nil, &pj); st != http.StatusOK || pj.EnrollmentPolicy != providerapi.EnrollClosed {
		t.Errorf("closed provider.json: %d %+v", st, pj)
	}

	inv := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Enrollment: providerapi.EnrollInvite}})
	ri := newRaw(t, inv)
	c = testenv.NewClient(t, inv)
	if _, _, err := signupAccount(t, c, "ivan", ""); !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Code != providerapi.CodeEnrollment {
		t.Errorf("signup without a code: %v, want 403 %s", err, providerapi.CodeEnrollment)
	}
	if _, _, err := signupAccount(t, c, "ivan", "not-a-code"); !providerclient.IsCode(err, providerapi.CodeEnrollment) {
		t.Errorf("signup with an unknown code: %v", err)
	}
	ri.noUser("ivan", nil)
	if err := inv.Store.AddInvite(ctx(t), "welcome-1"); err != nil {
		t.Fatal(err)
	}
	ivan, _, err := signupAccount(t, c, "ivan", "welcome-1")
	if err != nil {
		t.Fatalf("signup with an invite: %v", err)
	}
	if sec, err := ivan.c.Secret(ctx(t)); err != nil || !bytes.Equal(sec.WrappedSecret, ivan.cr.WrappedSecret) {
		t.Fatalf("invited account's session: %v", err)
	}
	c2 := testenv.NewClient(t, inv)
	if _, _, err := signupAccount(t, c2, "judy", "welcome-1"); !providerclient.IsCode(err, providerapi.CodeEnrollment) {
		t.Errorf("second signup with a used code: %v, want %s", err, providerapi.CodeEnrollment)
	}
	ri.noUser("judy", nil)
	// A taken login uses up a code like a signup does
	// (TestSignupTakenLoginCostsInviteAndLimit).
	for _, code := range []string{"welcome-2", "welcome-3"} {
		if err := inv.Store.AddInvite(ctx(t), code); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := signupAccount(t, c2, "ivan", "welcome-2"); !providerclient.IsCode(err, providerapi.CodeExists) {
		t.Errorf("signup of a taken login: %v, want %s", err, providerapi.CodeExists)
	}
	if _, _, err := signupAccount(t, c2, "judy", "welcome-2"); !providerclient.IsCode(err, providerapi.CodeEnrollment) {
		t.Errorf("signup with the code a taken login used: %v, want %s", err, providerapi.CodeEnrollment)
	}
	if _, _, err := signupAccount(t, c2, "judy", "welcome-3"); err != nil {
		t.Errorf("signup with a fresh code: %v", err)
	}
}

// --- 4. login rate limit

// TestLoginRateLimitPerClient: login starts are limited per client
// address, not per account: a client over its limit does not keep the
// account from others (TestStrangerCannotLockOutLogin for failed proofs).
func TestLoginRateLimitPerClient(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{LoginPerClient: 3}})
	signup(t, p, "kate")
	r := rawFrom(t, p, "127.0.0.2")
	for i, login := range []string{"kate", "nobody", "kate"} {
		if st, b, _, _ := loginStart(t, r, login); st != http.StatusOK {
			t.Fatalf("login start %d: HTTP %d %.200q", i+1, st, b)
		}
	}
	st, b, _, _ := loginStart(t, r, "liam")
	wantErr(t, "4th login start from the address", st, b, http.StatusTooManyRequests, providerapi.CodeRateLimited)
	// Through the client, the refusal is a clear error, not a wrong
	// password.
	if _, err := clientFrom(t, p, "127.0.0.2").Login(ctx(t), "kate", []byte(password)); !providerclient.IsCode(err, providerapi.CodeRateLimited) {
		t.Errorf("client login over the limit: %v, want %s", err, providerapi.CodeRateLimited)
	}
	// Kate logs in from her own address.
	if _, err := clientFrom(t, p, "127.0.0.3").Login(ctx(t), "kate", []byte(password)); err != nil {
		t.Errorf("kate's login from another address: %v", err)
	}
}

// --- 5. conflicts and the changes feed

func TestPushConflictsAndChangesFeed(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	mia := signup(t, p, "mia")
	c := mia.c

	// Two devices push the same base revision: the first wins, the
	// second learns the first's document.
	res1, err := c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", BaseRev: 0, Rev: 1, Ciphertext: []byte("device A v1")}})
	if err != nil || res1.Results[0].Status != providerapi.PushOK {
		t.Fatalf("first push: %+v %v", res1, err)
	}
	res2, err := c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", BaseRev: 0, Rev: 1, Ciphertext: []byte("device B v1")}})
	if err != nil {
		t.Fatal(err)
	}
	x := res2.Results[0]
	if x.Status != providerapi.PushConflict || x.Rev != 1 || x.Current == nil ||
		x.Current.ID != "d1" || x.Current.Rev != 1 || string(x.Current.Ciphertext) != "device A v1" || x.Current.Seq != res1.Results[0].Seq {
		t.Fatalf("second push: %+v (current %+v), want a conflict with device A's doc", x, x.Current)
	}
	// The same within one batch.
	res, err := c.Push(ctx(t), []providerapi.DocPush{
		{ID: "d2", BaseRev: 0, Rev: 1, Ciphertext: []byte("first")},
		{ID: "d2", BaseRev: 0, Rev: 1, Ciphertext: []byte("second")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := res.Results[0], res.Results[1]; a.Status != providerapi.PushOK || b.Status != providerapi.PushConflict || b.Current == nil || string(b.Current.Ciphertext) != "first" {
		t.Fatalf("batch with the same base twice: %+v, %+v", a, b)
	}
	// Updates and a tombstone.
	for _, push := range [][]providerapi.DocPush{
		{{ID: "d1", BaseRev: 1, Rev: 2, Ciphertext: []byte("d1 v2")}, {ID: "d3", Rev: 1, Ciphertext: []byte("d3 v1")}},
		{{ID: "d4", Rev: 1, Ciphertext: []byte("d4 v1")}, {ID: "d5", Rev: 1, Ciphertext: []byte("d5 v1")}},
		{{ID: "d2", BaseRev: 1, Rev: 2, Deleted: true, Ciphertext: []byte("d2 tombstone")}, {ID: "d1", BaseRev: 2, Rev: 3, Ciphertext: []byte("d1 v3")}},
	} {
		res, err := c.Push(ctx(t), push)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range res.Results {
			if x.Status != providerapi.PushOK {
				t.Fatalf("push %+v: %+v", push, x)
			}
		}
	}
	want := map[string]providerapi.Doc{
		"d1": {ID: "d1", Rev: 3, Ciphertext: []byte("d1 v3")},
		"d2": {ID: "d2", Rev: 2, Deleted: true, Ciphertext: []byte("d2 tombstone")},
		"d3": {ID: "d3", Rev: 1, Ciphertext: []byte("d3 v1")},
		"d4": {ID: "d4", Rev: 1, Ciphertext: []byte("d4 v1")},
		"d5": {ID: "d5", Rev: 1, Ciphertext: []byte("d5 v1")},
	}
	check := func(what string, docs []providerapi.Doc) {
		t.Helper()
		seen := map[string]bool{}
		var lastSeq uint64
		for _, d := range docs {
			w, ok := want[d.ID]
			if !ok || seen[d.ID] {
				t.Fatalf("%s: unexpected or repeated %s in %v", what, d.ID, docIDs(docs))
			}
			seen[d.ID] = true
			if d.Rev != w.Rev || d.Deleted != w.Deleted || !bytes.Equal(d.Ciphertext, w.Ciphertext) {
				t.Errorf("%s: %s is %+v, want %+v", what, d.ID, d, w)
			}
			if d.Seq <= lastSeq {
				t.Errorf("%s: not in sequence order: %v", what, docs)
			}
			lastSeq = d.Seq
		}
		if len(seen) != len(want) {
			t.Errorf("%s: got %v, want all of d1..d5", what, docIDs(docs))
		}
	}

	all, err := c.Changes(ctx(t), 0, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if all.More {
		t.Error("the whole feed says more")
	}
	check("whole feed", all.Changes)
	top, err := p.Store.LastSeq(ctx(t), "mia")
	if err != nil {
		t.Fatal(err)
	}
	if all.LastSeq != top {
		t.Errorf("feed last_seq %d, want the user's sequence %d", all.LastSeq, top)
	}

	// Paged by two.
	var paged []providerapi.Doc
	var mores []bool
	since := uint64(0)
	for i := 0; i < 10; i++ {
		page, err := c.Changes(ctx(t), since, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) > 2 {
			t.Fatalf("page of %d with limit 2", len(page.Changes))
		}
		if page.LastSeq <= since {
			t.Fatalf("page after %d has last_seq %d", since, page.LastSeq)
		}
		if n := len(page.Changes); n > 0 && page.Changes[n-1].Seq > page.LastSeq {
			t.Fatalf("page's last_seq %d is before its last doc's %d", page.LastSeq, page.Changes[n-1].Seq)
		}
		paged = append(paged, page.Changes...)
		mores = append(mores, page.More)
		since = page.LastSeq
		if !page.More {
			break
		}
	}
	if fmt.Sprint(mores) != "[true true false]" {
		t.Errorf("more over the pages: %v, want [true true false]", mores)
	}
	check("paged feed", paged)
	if since != top {
		t.Errorf("paging ended at %d, want %d", since, top)
	}
	// Caught up: nothing more, and the sequence stays.
	end, err := c.Changes(ctx(t), since, 2, 0)
	if err != nil || len(end.Changes) != 0 || end.More || end.LastSeq != top {
		t.Errorf("feed after the end: %+v, %v", end, err)
	}
	// A long poll is answered by the next push.
	got := make(chan *providerapi.ChangesResponse, 1)
	go func() {
		ch, err := c.Changes(context.Background(), top, 10, 30*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- ch
	}()
	res, err = c.Push(ctx(t), []providerapi.DocPush{{ID: "d6", Rev: 1, Ciphertext: []byte("d6")}})
	if err != nil {
		t.Fatal(err)
	}
	if ch := <-got; ch == nil || len(ch.Changes) != 1 || ch.Changes[0].ID != "d6" || ch.LastSeq != res.Results[0].Seq {
		t.Errorf("long poll: %+v", ch)
	}
	// Bad parameters.
	r := newRaw(t, p)
	for _, q := range []string{"since=-1", "since=x", "limit=1.5", "wait=forever", "since=99999999999999999999"} {
		st, b := r.do(http.MethodGet, "/1/docs/changes?"+q, bearer(mia.token), nil)
		wantErr(t, "changes?"+q, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	}
}

// --- 6. nicknym

func TestNicknym(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	nina := signup(t, p, "nina")
	oscar := signup(t, p, "oscar")

	ninaPub, _ := armoredKey(t, nina.address())
	oscarPub, _ := armoredKey(t, oscar.address())
	put := func(u *user, what, key string) {
		t.Helper()
		st, b := r.doJSON(http.MethodPut, "/1/keys", u.token, providerapi.KeyRequest{OpenPGP: key}, nil)
		wantErr(t, what, st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	}
	put(nina, "oscar's key by nina", oscarPub)
	elsewherePub, _ := armoredKey(t, "nina@elsewhere.test")
	put(nina, "a key for another domain", elsewherePub)
	_, ninaPriv := armoredKey(t, nina.address())
	put(nina, "a private key", ninaPriv)
	put(nina, "garbage", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n")
	put(nina, "not armored", "hello")
	put(nina, "empty", "")
	for _, addr := range []string{nina.address(), oscar.address()} {
		if _, err := p.Store.Key(ctx(t), addr); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("refused keys stored one for %s (%v)", addr, err)
		}
	}

	if err := nina.c.PublishKey(ctx(t), ninaPub); err != nil {
		t.Fatalf("publishing nina's own key: %v", err)
	}
	// Oscar cannot publish nina's key (for her address or his).
	put(oscar, "nina's key by oscar", ninaPub)
	// Looked up without a token, in any case.
	anon := testenv.NewClient(t, p)
	want, err := pgpkey.ReadArmored(ninaPub)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{nina.address(), strings.ToUpper(nina.address())} {
		kr, err := anon.LookupKey(ctx(t), addr)
		if err != nil {
			t.Fatalf("lookup %s: %v", addr, err)
		}
		got, err := pgpkey.ReadArmored(kr.OpenPGP)
		if err != nil || pgpkey.Fingerprint(got) != pgpkey.Fingerprint(want) || got.PrivateKey != nil || kr.Address != nina.address() {
			t.Errorf("lookup %s: %+v, %v", addr, kr, err)
		}
	}
	// Unknown addresses and bad queries.
	for _, addr := range []string{oscar.address(), "nobody@" + testenv.Domain, "nina@elsewhere.test"} {
		st, b := r.do(http.MethodGet, "/1/keys?address="+url.QueryEscape(addr), "", nil)
		wantErr(t, "lookup "+addr, st, b, http.StatusNotFound, providerapi.CodeNotFound)
	}
	for _, q := range []string{"Nina <" + nina.address() + ">", "", "nina", "@" + testenv.Domain, strings.Repeat("a", 320) + "@x.test"} {
		st, b := r.do(http.MethodGet, "/1/keys?address="+url.QueryEscape(q), "", nil)
		wantErr(t, fmt.Sprintf("lookup %q", q), st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
	}
}

// TestNicknymServesOnlyWhatItChecked: the provider checks the first armored
// block of a published key and stores the text it was sent, whole. A second
// block after it (here: the user's private key, as a careless client could
// paste it) is published unchecked, and GnuPG imports every block of what
// it fetches.
func TestNicknymServesOnlyWhatItChecked(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	u := signup(t, p, "olga")
	pub, priv := armoredKey(t, u.address())
	st, b := r.doJSON(http.MethodPut, "/1/keys", u.token, providerapi.KeyRequest{OpenPGP: pub + priv}, nil)
	if st/100 == 2 {
		var kr providerapi.KeyResponse
		st, b := r.doJSON(http.MethodGet, "/1/keys?address="+url.QueryEscape(u.address()), "", nil, &kr)
		if st != http.StatusOK {
			t.Fatalf("lookup: HTTP %d %.200q", st, b)
		}
		if strings.Contains(kr.OpenPGP, "PRIVATE KEY") {
			t.Fatalf("nicknym publishes a private key block (%d bytes served)", len(kr.OpenPGP))
		}
		if strings.Count(kr.OpenPGP, "-----BEGIN") != 1 {
			t.Fatalf("nicknym publishes %d armor blocks", strings.Count(kr.OpenPGP, "-----BEGIN"))
		}
		return
	}
	wantErr(t, "public and private key", st, b, http.StatusBadRequest, providerapi.CodeBadRequest)
}

// TestChangesSinceTheLastSequence: "since" is the last sequence a device
// has; the feed holds what changed after it. At the largest sequence
// there is nothing after.
func TestChangesSinceTheLargestSequence(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	u := signup(t, p, "pat")
	if _, err := u.c.Push(ctx(t), []providerapi.DocPush{{ID: "d1", Rev: 1, Ciphertext: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	ch, err := u.c.Changes(ctx(t), math.MaxUint64, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Changes) != 0 || ch.More {
		t.Errorf("changes since %d: %d documents (%v), want none", uint64(math.MaxUint64), len(ch.Changes), docIDs(ch.Changes))
	}
}

// TestUnknownLoginStableAcrossRestarts: the salts answered for an unknown
// login are the same after leapd restarts, as a real user's are, so a
// restart does not tell them apart.
func TestUnknownLoginStableAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	salts := func() ([]byte, []byte) {
		p := testenv.StartProvider(t, testenv.Options{Dir: dir})
		defer p.Stop()
		c := newStableClient(t, p)
		resp, err := c.LoginStart(context.Background(), "no-such-user", bytes.Repeat([]byte{7}, 512))
		if err != nil {
			t.Fatal(err)
		}
		return resp.SRPSalt, resp.KDF.Salt
	}
	s1, k1 := salts()
	s2, k2 := salts()
	if !bytes.Equal(s1, s2) || !bytes.Equal(k1, k2) {
		t.Fatal("an unknown login's salts changed across a restart")
	}
}

func newStableClient(t *testing.T, p *testenv.Provider) *providerclient.Client {
	t.Helper()
	pr, err := providerclient.Bootstrap(context.Background(), p.URL, p.Fingerprint, providerclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := providerclient.New(pr, providerclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
