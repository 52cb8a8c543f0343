package webui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// chromiumPath is Debian's chromium, or skips the test (fails it when
// BITMASK_REQUIRE_PEERS=1: CI must not skip).
func chromiumPath(t testing.TB) string {
	for _, p := range []string{os.Getenv("BITMASK_CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and BITMASK_REQUIRE_PEERS=1")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// browser is a headless Chromium at phone width (360 px), for the
// test's life.
func browser(t testing.TB) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.DisableGPU,
		chromedp.NoSandbox, // tests may run as root
		chromedp.WindowSize(360, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// step runs browser actions with a deadline, failing the test.
func step(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// submit submits the form of the element sel and waits for the page
// that answers.
func submit(t testing.TB, ctx context.Context, what string, sel string) {
	t.Helper()
	run(t, ctx, what, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Submit(chromedp.CSS(sel))))
}

// bodyText is the page's visible text.
func bodyText(t testing.TB, ctx context.Context) string {
	t.Helper()
	return run(t, ctx, "body text", chromedp.Evaluate[string](`document.body.innerText`))
}

// fitsPhone checks that the page needs no sideways scrolling at 360 px.
func fitsPhone(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	w := run(t, ctx, "width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if w > 360 {
		t.Errorf("%s is %d px wide at a 360 px viewport", page, w)
	}
}

// colon is a hex fingerprint as AB:CD:...
func colon(h string) string {
	var out []string
	for i := 0; i+1 < len(h); i += 2 {
		out = append(out, strings.ToUpper(h[i:i+2]))
	}
	return strings.Join(out, ":")
}

// A user opens the page from the tray's URL and, in a real browser,
// signs up with an invite code, sees the status, sets up the mail client
// (copy buttons, the certificate's fingerprint), looks up and trusts a
// contact's key, changes the password, logs out and in again; a form
// from another site and a browser without the cookie are refused.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Enrollment: "invite"}})
	for _, c := range []string{"invite-alice", "invite-bob"} {
		if err := p.Store.AddInvite(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	if _, err := controlapi.NewLocalClient(r.ControlAddr, r.Dir).Status(context.Background()); err != nil {
		t.Fatal(err) // serving: the page is registered
	}
	alice, bob := "alice@"+testenv.Domain, "bob@"+testenv.Domain
	if _, err := r.Daemon.CreateUser(context.Background(), bob, []byte(testenv.Password), p.Ref(), "invite-bob"); err != nil {
		t.Fatal(err)
	}
	if err := r.Daemon.Logout(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.ControlAddr

	// Without the cookie: refused.
	step(t, ctx, "open without a code", chromedp.Navigate(base+"/"))
	if txt := bodyText(t, ctx); !strings.Contains(txt, "bitmaskctl open") {
		t.Fatalf("page without a session:\n%s", txt)
	}

	u, err := controlserver.LoginURL(r.Daemon, "/signup")
	if err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "sign-in link", chromedp.Navigate(u))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != base+"/signup" {
		t.Fatalf("the link led to %s", loc)
	}
	fitsPhone(t, ctx, "/signup")

	// Keyboard: the first Tab reaches the skip link, which leads to the
	// content.
	step(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
	if c := run(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.className`)); c != "skip" {
		t.Errorf("first Tab focuses %q, not the skip link", c)
	}
	step(t, ctx, "enter", chromedp.KeyEvent(kb.Enter))
	if id := run(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); id != "main" {
		t.Errorf("the skip link leads to %q", id)
	}
	// Every form field has a label.
	if n := run(t, ctx, "labels", chromedp.Evaluate[int](`[...document.querySelectorAll('input:not([type=hidden])')].filter(i => i.labels.length === 0).length`)); n != 0 {
		t.Errorf("%d inputs without a label", n)
	}

	step(t, ctx, "fill the signup form",
		chromedp.SendKeys(chromedp.ID("address"), alice),
		chromedp.SendKeys(chromedp.ID("password"), "alice's first password"),
		chromedp.SendKeys(chromedp.ID("password2"), "alice's first password"),
		chromedp.SendKeys(chromedp.ID("invite"), "invite-alice"),
		chromedp.Click(chromedp.CSS("summary")),
		// Long values are set, not typed key by key.
		chromedp.SetValue(chromedp.ID("provider"), p.URL),
		chromedp.SetValue(chromedp.ID("fingerprint"), p.Fingerprint),
	)
	submit(t, ctx, "sign up", "#address")
	loc := run(t, ctx, "location", chromedp.Location())
	if !strings.HasPrefix(loc, base+"/setup?account=") {
		t.Fatalf("after signup at %s:\n%s", loc, bodyText(t, ctx))
	}
	a, ok := r.Daemon.Account(alice)
	if !ok {
		t.Fatal("alice is not logged in after signup")
	}
	// The recovery code, shown once above the settings.
	if code := run(t, ctx, "recovery code", chromedp.Text(chromedp.ID("v-recovery"))); code == "" {
		t.Error("no recovery code after signup")
	} else if _, err := seal.ParseRecoveryCode(code); err != nil {
		t.Errorf("the recovery code shown, %q: %v", code, err)
	}

	// The setup page: settings, a copy button, the certificate.
	fitsPhone(t, ctx, "/setup")
	step(t, ctx, "copy buttons", chromedp.WaitVisible(chromedp.CSS(`button[data-copy="v-pass"]`)))
	if tok := run(t, ctx, "token", chromedp.Text(chromedp.ID("v-pass"))); tok != a.LocalToken() {
		t.Errorf("password shown %q, the local token is %q", tok, a.LocalToken())
	}
	want := colon(r.Daemon.LocalServices().TLSFingerprint)
	if fp := run(t, ctx, "cert", chromedp.Text(chromedp.ID("v-cert"))); want == "" || fp != want {
		t.Errorf("certificate fingerprint shown %q, the daemon's is %q", fp, want)
	}
	for _, sel := range []string{`a[href^="/setup/config-v1.1.xml"]`, `a[href^="/setup/bitmask.mobileconfig"]`, `a[href="/setup/bitmask-localhost.crt"]`} {
		step(t, ctx, "download link "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	}
	step(t, ctx, "copy", chromedp.Click(chromedp.CSS(`button[data-copy="v-pass"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#copy-status:not(:empty)`)))

	// Status.
	step(t, ctx, "status", chromedp.Navigate(base+"/"))
	fitsPhone(t, ctx, "/")
	txt := bodyText(t, ctx)
	for _, w := range []string{alice, "Online", "Outgoing mail waiting", a.Docs.Status().LastError + ""} {
		if !strings.Contains(txt, w) {
			t.Errorf("status page lacks %q:\n%s", w, txt)
		}
	}
	st := r.Daemon.Status()
	if len(st) != 1 || !strings.Contains(txt, st[0].Key) {
		t.Errorf("status page does not show the key %v:\n%s", st, txt)
	}

	// Keys: look up bob's key (nicknym), then trust it by fingerprint.
	step(t, ctx, "keys", chromedp.Navigate(base+"/keys"))
	fitsPhone(t, ctx, "/keys")
	step(t, ctx, "fetch", chromedp.SendKeys(chromedp.ID("fetch-contact"), bob))
	submit(t, ctx, "look up", "#fetch-contact")
	ck, err := a.Contacts.Get(bob)
	if err != nil {
		t.Fatalf("bob's key was not fetched: %v\n%s", err, bodyText(t, ctx))
	}
	if txt := bodyText(t, ctx); !strings.Contains(txt, ck.Fingerprint) || !strings.Contains(txt, "provider_trust") {
		t.Errorf("keys page after lookup:\n%s", txt)
	}
	// A wrong fingerprint is refused and changes nothing.
	step(t, ctx, "trust wrong", chromedp.SendKeys(chromedp.ID("trust-contact"), bob),
		chromedp.SetValue(chromedp.ID("trust-fingerprint"), strings.Repeat("AB", 20)))
	submit(t, ctx, "trust wrong", "#trust-contact")
	if txt := bodyText(t, ctx); !strings.Contains(txt, "not ") {
		t.Errorf("wrong fingerprint accepted:\n%s", txt)
	}
	step(t, ctx, "trust", chromedp.SetValue(chromedp.ID("trust-contact"), bob),
		chromedp.SetValue(chromedp.ID("trust-fingerprint"), colon(ck.Fingerprint)))
	submit(t, ctx, "trust", "#trust-contact")
	if k, _ := a.Contacts.Get(bob); k.Level.String() != "fingerprint" {
		t.Errorf("bob's key is at %s after trust:\n%s", k.Level, bodyText(t, ctx))
	}

	// A form on another site, or on another port of this machine (the
	// same site to a browser: the cookie goes along), posting to the
	// page: refused, nothing done.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><form id="f" method="post" action="%s/logout"><input name="account" value="%s"></form><script>document.getElementById('f').submit()</script>`, base, alice)
	}))
	defer evil.Close()
	for _, origin := range []string{strings.Replace(evil.URL, "127.0.0.1", "localhost", 1), evil.URL} {
		step(t, ctx, "form from "+origin, chromedp.Navigate(origin), chromedp.WaitVisible(chromedp.CSS("h1")))
		if txt := bodyText(t, ctx); !strings.Contains(txt, "did not come from this page") {
			t.Errorf("form from %s:\n%s", origin, txt)
		}
		if _, ok := r.Daemon.Account(alice); !ok {
			t.Fatalf("a form from %s logged alice out", origin)
		}
	}

	// Password change.
	step(t, ctx, "passwd", chromedp.Navigate(base+"/passwd"),
		chromedp.SendKeys(chromedp.ID("old_password"), "alice's first password"),
		chromedp.SendKeys(chromedp.ID("new_password"), "alice's second password"),
		chromedp.SendKeys(chromedp.ID("new_password2"), "alice's second password"))
	submit(t, ctx, "change password", "#old_password")
	if txt := bodyText(t, ctx); !strings.Contains(txt, "is changed") {
		t.Fatalf("after password change:\n%s", txt)
	}

	// Log out, then log in with the new password.
	submit(t, ctx, "log out", `form[action="/logout"] button`)
	if _, ok := r.Daemon.Account(alice); ok {
		t.Fatalf("alice still logged in:\n%s", bodyText(t, ctx))
	}
	if txt := bodyText(t, ctx); !strings.Contains(txt, "No account is logged in") {
		t.Errorf("status after logout:\n%s", txt)
	}
	step(t, ctx, "login", chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.ID("address"), alice),
		chromedp.SendKeys(chromedp.ID("password"), "alice's second password"))
	submit(t, ctx, "log in", "#address")
	if _, ok := r.Daemon.Account(alice); !ok {
		t.Fatalf("login failed:\n%s", bodyText(t, ctx))
	}
	if txt := bodyText(t, ctx); !strings.Contains(txt, "Logged in as "+alice) {
		t.Errorf("status after login:\n%s", txt)
	}

	// Signing the browser out of the page ends its session.
	submit(t, ctx, "end session", `form[action="/session/end"] button`)
	step(t, ctx, "after sign-out", chromedp.Navigate(base+"/"))
	if txt := bodyText(t, ctx); !strings.Contains(txt, "bitmaskctl open") {
		t.Errorf("page after the session ended:\n%s", txt)
	}
}

// BenchmarkPageLoad loads pages of the local page in headless Chromium
// on loopback, with one account logged in, and reports the browser's
// navigation timing: first byte (responseStart) and the whole page with
// its style sheet and script (loadEventEnd), in milliseconds from the
// navigation's start.
func BenchmarkPageLoad(b *testing.B) {
	ctx := browser(b)
	p := testenv.StartProvider(b, testenv.Options{})
	r := testenv.StartDaemon(b, testenv.DaemonOptions{})
	testenv.NewUser(b, r.Daemon, p, "alice@"+testenv.Domain)
	if _, err := controlapi.NewLocalClient(r.ControlAddr, r.Dir).Status(context.Background()); err != nil {
		b.Fatal(err)
	}
	u, err := controlserver.LoginURL(r.Daemon, "/")
	if err != nil {
		b.Fatal(err)
	}
	step(b, ctx, "sign in", chromedp.Navigate(u))
	base := "http://" + r.ControlAddr
	for _, path := range []string{"/", "/setup", "/keys"} {
		b.Run(strings.TrimPrefix(path, "/")+"page", func(b *testing.B) {
			var ttfb, load float64
			for b.Loop() {
				step(b, ctx, "load", chromedp.Navigate(base+path))
				t := run(b, ctx, "timing", chromedp.Evaluate[struct {
					ResponseStart, LoadEventEnd float64
				}](`(() => { const n = performance.getEntriesByType('navigation')[0]; return {ResponseStart: n.responseStart, LoadEventEnd: n.loadEventEnd}; })()`))
				ttfb += t.ResponseStart
				load += t.LoadEventEnd
			}
			b.ReportMetric(ttfb/float64(b.N), "first-byte-ms")
			b.ReportMetric(load/float64(b.N), "load-ms")
		})
	}
}
