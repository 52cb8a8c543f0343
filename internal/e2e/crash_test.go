package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// buildBitmaskd builds the real daemon binary once per test binary.
func buildBitmaskd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bitmaskd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/bitmask-go/bitmask/cmd/bitmaskd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd     *exec.Cmd
	control string
	imap    string
	token   string
}

// startBitmaskd runs the binary on dataDir and waits for its control API.
func startBitmaskd(t testing.TB, bin, dataDir string, args ...string) *proc {
	t.Helper()
	base := []string{"-data", dataDir, "-control", "127.0.0.1:0", "-imap", "", "-smtp", ""}
	cmd := exec.Command(bin, append(base, args...)...)
	// The binary holds the provider to the real Argon2id floor: the
	// accounts it logs in to are made with FloorKDF.
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	p := &proc{cmd: cmd}
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "control API on http://"); ok {
			p.control, _, _ = strings.Cut(rest, " ")
			if !slices.Contains(args, "-imap") {
				break
			}
		}
		if _, rest, ok := strings.Cut(sc.Text(), "IMAP on "); ok {
			p.imap, _, _ = strings.Cut(rest, ",")
			break
		}
	}
	if p.control == "" {
		t.Fatal("bitmaskd did not announce its control API")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	tok, err := os.ReadFile(controlapi.TokenFile(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	p.token = strings.TrimSpace(string(tok))
	return p
}

func (p *proc) call(t *testing.T, path string, in any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", "http://"+p.control+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e controlapi.ErrorResponse
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s: %d %s", path, resp.StatusCode, e.Error)
	}
}

// TestKillDuringIncoming: kill -9 of bitmaskd while it takes 200
// incoming messages, then a restart: all 200 are in INBOX, once each.
func TestKillDuringIncoming(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon binary")
	}
	bin := buildBitmaskd(t)
	p := testenv.StartProvider(t, testenv.Options{})
	addr := "gus@" + testenv.Domain
	dir := t.TempDir()
	{
		d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir, FloorKDF: true})
		if _, err := d.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	const n = 200
	for i := range n {
		deliver(t, p, "sender@sender.test", addr, plainMessage("sender@sender.test", addr, fmt.Sprintf("message %03d", i), strings.Repeat("text ", 200)))
	}
	queued := func() int {
		items, more, err := p.Store.ListIncoming(context.Background(), "gus", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if more {
			return 1000
		}
		return len(items)
	}
	login := controlapi.LoginRequest{Address: addr, Password: password, ProviderRef: controlapi.ProviderRef(p.Ref())}

	// Kill the daemon twice, mid-way, with SIGKILL.
	for round, killBelow := range []int{170, 90} {
		pr := startBitmaskd(t, bin, dir)
		pr.call(t, "/v1/login", login)
		testenv.Eventually(t, 2*time.Minute, "progress before the kill", func() bool { return queued() <= killBelow })
		if err := pr.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = pr.cmd.Wait()
		t.Logf("round %d: killed with %d items still queued", round, queued())
	}
	pr := startBitmaskd(t, bin, dir)
	pr.call(t, "/v1/login", login)
	testenv.Eventually(t, 2*time.Minute, "the queue to drain", func() bool { return queued() == 0 })
	if err := pr.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = pr.cmd.Wait()

	// Every message once, on this device and on a fresh one.
	for _, d := range []string{dir, t.TempDir()} {
		dm := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: d})
		a, err := dm.Login(ctx(t), addr, []byte(password), p.Ref())
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := a.Mail.Messages("INBOX")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, m := range msgs {
			raw, err := a.Mail.Raw(ctx(t), m.ID)
			if err != nil {
				t.Fatal(err)
			}
			mm, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			seen[mm.Header.Get("Subject")]++
		}
		if len(msgs) != n || len(seen) != n {
			t.Fatalf("%s: %d messages, %d distinct, want %d", d, len(msgs), len(seen), n)
		}
		dm.Close()
	}
}

func (p *proc) get(t *testing.T, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.control+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// TestKillWithOutbox: kill -9 of bitmaskd with messages in its outbox
// (the relay is down) loses none: after a restart all are delivered, once.
func TestKillWithOutbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon binary")
	}
	bin := buildBitmaskd(t)
	p := testenv.StartProvider(t, testenv.Options{})
	b := signup(t, p, "bob")
	addr := "hal@" + testenv.Domain
	dir := t.TempDir()
	{
		d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir, FloorKDF: true})
		if _, err := d.CreateUser(ctx(t), addr, []byte(password), p.Ref(), ""); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	p.StopSubmission()
	pr := startBitmaskd(t, bin, dir, "-smtp", "127.0.0.1:0")
	login := controlapi.LoginRequest{Address: addr, Password: password, ProviderRef: controlapi.ProviderRef(p.Ref())}
	pr.call(t, "/v1/login", login)
	var mc controlapi.MailConfig
	pr.get(t, "/v1/mail/config?address="+addr, &mc)
	dev := &device{Running: &testenv.Running{SMTPAddr: fmt.Sprintf("%s:%d", mc.SMTPHost, mc.SMTPPort)}}
	const n = 20
	for i := range n {
		msg := plainMessage(addr, b.acct.Address, fmt.Sprintf("outbox %02d", i), "kept across a crash")
		if err := submitAs(t, dev.SMTPAddr, addr, mc.Password, b.acct.Address, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = pr.cmd.Wait()
	p.StartSubmission(t)
	pr = startBitmaskd(t, bin, dir)
	pr.call(t, "/v1/login", login)
	waitMessages(t, b, "INBOX", n)
	// Once the sender has stopped nothing more can be sent, and once
	// bob's queue is empty everything it sent is in his INBOX: the count
	// is final, with no time to wait for duplicates.
	if err := pr.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = pr.cmd.Wait()
	waitIncomingDrained(t, p, "bob")
	msgs, _ := b.acct.Mail.Messages("INBOX")
	if len(msgs) != n {
		t.Fatalf("%d messages delivered, want %d", len(msgs), n)
	}
}
