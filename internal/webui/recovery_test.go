package webui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/webui"
)

// codeFake is the fake backend that also makes a recovery code at
// signup, as the daemon does.
type codeFake struct {
	*fake
	codes map[string]string
}

func (f *codeFake) TakeSignupRecoveryCode(address string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.codes[address]
	delete(f.codes, address)
	return c
}

// After a signup the next page shows the recovery code once, with a
// copy button; the page after that does not.
func TestSignupShowsRecoveryCodeOnce(t *testing.T) {
	const code = "000G4-0R40M-30E20-9185G-R38E1-W8124-GKPTQ"
	b := &codeFake{fake: newFake(t), codes: map[string]string{"carol@example.test": code}}
	c := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s := webui.New(b, webui.Config{Now: c.Now})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	e := &env{t: t, s: s, b: b.fake, url: srv.URL, host: strings.TrimPrefix(srv.URL, "http://"), clock: c}
	ck, csrf := e.login()
	a := e.post("/signup", ck, url.Values{"csrf": {csrf}, "address": {"Carol@example.test"}, "password": {"a password"}, "password2": {"a password"}}, nil)
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/setup?account=carol") {
		t.Fatalf("signup: %d %v %s", a.status, a.header, a.body)
	}
	p := e.get(a.header.Get("Location"), ck)
	for _, want := range []string{code, `data-copy="v-recovery"`, "Write down your recovery code", "shown only now"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the page after signup lacks %q:\n%s", want, p.body)
		}
	}
	if again := e.get(a.header.Get("Location"), ck); strings.Contains(again.body, code) {
		t.Error("the recovery code is shown a second time")
	}
}
