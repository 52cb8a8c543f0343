package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/testenv/dnssec"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Durability under kill -9 (docs/operations.md, "What kill -9
// guarantees"): these tests run the real leapd binary, SIGKILL it at a
// point chosen by what its clients saw (after the k-th answer, k random),
// restart it on the same data directory and check what the clients were
// told against what the store holds.

const killDomain = "kill.test"

// killRounds is how many kills each test makes: 2, or
// BITMASK_KILL_ROUNDS for a longer run.
func killRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BITMASK_KILL_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// leapdBinary is the leapd binary, built once per test binary.
var leapdBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "leapd-kill-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "leapd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	postgres.Stop() // the PostgreSQL runs' server, if one started
	if bin, err := leapdBinary(); err == nil && strings.Contains(bin, "leapd-kill-bin-") {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// leapdProc is one run of the leapd binary.
type leapdProc struct {
	cmd         *exec.Cmd
	api         string // https://127.0.0.1:PORT
	mx          string
	submission  string
	fingerprint string
	exited      chan struct{}
}

// killEnv is a data directory that leapd runs on, run after run.
type killEnv struct {
	t      *testing.T
	bin    string
	dir    string
	domain string
	mx     string    // a fixed MX address ("": a picked port)
	args   []string  // more flags
	ports  [3]string // API, MX, submission: kept across runs when free
	log    *os.File
	cur    *leapdProc
}

func newKillEnv(t *testing.T) *killEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("kills a real leapd: not in -short")
	}
	bin, err := leapdBinary()
	if err != nil {
		t.Fatal(err)
	}
	e := &killEnv{t: t, bin: bin, dir: t.TempDir(), domain: killDomain}
	e.log, err = os.Create(filepath.Join(t.TempDir(), "leapd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if e.cur != nil {
			e.kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(e.log.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("leapd's log (end):\n%s", b)
		}
		e.log.Close()
	})
	return e
}

// freePort is a loopback address the kernel just picked and let go of.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs leapd on the data directory and waits until it reported
// its services. leapd cannot be told to report a kernel-picked API port
// yet, so the ports are picked just before; a port taken in between
// makes leapd exit, and it is started again on fresh ones.
func (e *killEnv) start() *leapdProc {
	t := e.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		if e.ports[0] == "" || attempt > 0 {
			e.ports = [3]string{freePort(t), freePort(t), freePort(t)}
		}
		p, err := e.try()
		if err == nil {
			e.cur = p
			return p
		}
		if attempt == 4 {
			t.Fatalf("leapd did not start: %v", err)
		}
		t.Logf("leapd did not start (%v); again on other ports", err)
	}
}

func (e *killEnv) try() (*leapdProc, error) {
	fmt.Fprintf(e.log, "=== start on %v\n", e.ports)
	mx := e.ports[1]
	if e.mx != "" {
		mx = e.mx
	}
	cmd := exec.Command(e.bin, append([]string{"-data", e.dir, "-domain", e.domain,
		"-listen", e.ports[0], "-api-url", "https://" + e.ports[0],
		"-mx", mx, "-submission", e.ports[2]}, e.args...)...)
	cmd.Stderr = e.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &leapdProc{cmd: cmd, exited: make(chan struct{}), api: "https://" + e.ports[0]}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(e.log, "stdout:", line)
		if _, fp, ok := strings.Cut(line, "CA fingerprint "); ok {
			p.fingerprint = fp
		}
		if _, a, ok := strings.Cut(line, "MX (SMTP) at "); ok {
			p.mx = a
		}
		if _, a, ok := strings.Cut(line, "submission (STARTTLS) at "); ok {
			p.submission = a
			break // the last line of the report
		}
	}
	go func() {
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(p.exited)
	}()
	if p.submission == "" || p.mx == "" || p.fingerprint == "" {
		cmd.Process.Kill()
		<-p.exited
		return nil, errors.New("exited before reporting its addresses")
	}
	return p, nil
}

// kill is kill -9 of the running leapd; it returns once the process is
// gone (every socket of it closed by the kernel).
func (e *killEnv) kill() {
	p := e.cur
	e.cur = nil
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	fmt.Fprintln(e.log, "=== killed")
}

// killAccount is an account on the provider with its key published:
// the MX takes mail for it.
type killAccount struct {
	login, token string
	key          *openpgp.Entity
}

func (e *killEnv) bootstrap(p *leapdProc) *providerclient.Provider {
	e.t.Helper()
	pr, err := providerclient.Bootstrap(e.t.Context(), p.api, p.fingerprint, providerclient.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pr
}

func (e *killEnv) client(p *leapdProc) *providerclient.Client {
	e.t.Helper()
	c, err := providerclient.New(e.bootstrap(p), providerclient.Options{Timeout: 2 * time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *killEnv) signup(p *leapdProc, login string) *killAccount {
	t := e.t
	t.Helper()
	c := e.client(p)
	kdf, err := seal.FastKDFParams()
	if err != nil {
		t.Fatal(err)
	}
	_, _, tok, _, err := c.SignupAccount(t.Context(), login, []byte("correct horse battery"), kdf, "")
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(tok)
	a := &killAccount{login: login, token: tok}
	a.key, err = pgpkey.Generate(login+"@"+e.domain, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pgpkey.ArmorPublic(a.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PublishKey(t.Context(), pub); err != nil {
		t.Fatal(err)
	}
	return a
}

// outcome is what a client was told about one message or push.
type outcome int

const (
	unsent   outcome = iota // failed before it was all sent: must not be stored
	refused                 // answered with an error: must not be stored
	lost                    // all sent, no answer (the kill): stored at most once
	accepted                // answered OK: stored exactly once
)

func (o outcome) String() string {
	return [...]string{"unsent", "refused", "lost", "accepted"}[o]
}

// sendOne sends one message on c and says what the client was told.
func sendOne(c *smtp.Client, from, to string, msg []byte) outcome {
	var te *textproto.Error
	if err := c.Mail(from); err != nil {
		if errors.As(err, &te) {
			return refused
		}
		return unsent
	}
	if err := c.Rcpt(to); err != nil {
		if errors.As(err, &te) {
			return refused
		}
		return unsent
	}
	w, err := c.Data()
	if err != nil {
		if errors.As(err, &te) {
			return refused
		}
		return unsent
	}
	if _, err := w.Write(msg); err != nil {
		// The final dot was not sent: no server takes a message
		// without it.
		return unsent
	}
	if err := w.Close(); err != nil {
		if errors.As(err, &te) {
			return refused
		}
		return lost
	}
	return accepted
}

// TestKillDuringMXAccept: senders on several connections hand messages
// to the MX; leapd is killed after the k-th 250 (k random, each round).
// After the restarts, every message answered 250 is in the recipient's
// incoming queue exactly once; none answered with an error, or cut off
// before its final dot, is there; one whose final dot was sent but
// whose answer never came (the kill) is there at most once.
func TestKillDuringMXAccept(t *testing.T) { killDuringMXAccept(t, nil) }

// killDuringMXAccept is the test on the store that storeArgs name (nil:
// the embedded bbolt store).
func killDuringMXAccept(t *testing.T, storeArgs []string) {
	e := newKillEnv(t)
	e.args = storeArgs
	p := e.start()
	acct := e.signup(p, "mallory")
	to := acct.login + "@" + killDomain

	rounds := killRounds()
	const senders = 4
	var (
		mu      sync.Mutex
		told    = map[int]outcome{}
		nextSeq int
	)
	for round := range rounds {
		if round > 0 {
			p = e.start()
		}
		killAt := 3 + rand.IntN(25)
		var (
			wg     sync.WaitGroup
			acks   int
			killed = make(chan struct{})
			once   sync.Once
		)
		for range senders {
			wg.Go(func() {
				c, err := smtp.Dial(p.mx)
				if err != nil {
					return
				}
				defer c.Close()
				if err := c.Hello("sender.test"); err != nil {
					return
				}
				for {
					select {
					case <-killed:
						return
					default:
					}
					mu.Lock()
					seq := nextSeq
					nextSeq++
					mu.Unlock()
					msg := fmt.Appendf(nil, "From: s@sender.test\r\nTo: %s\r\nSubject: kill %d\r\nX-Kill-Seq: %d\r\n\r\n%s\r\n", to, seq, seq, bytes.Repeat([]byte("x"), rand.IntN(4000)))
					o := sendOne(c, "s@sender.test", to, msg)
					mu.Lock()
					told[seq] = o
					if o == accepted {
						acks++
						if acks == killAt {
							once.Do(func() { e.kill(); close(killed) })
						}
					}
					mu.Unlock()
					if o != accepted {
						return // the connection is gone or refused: stop this sender
					}
				}
			})
		}
		wg.Wait()
		once.Do(func() { e.kill(); close(killed) }) // every sender stopped before k
		t.Logf("round %d: killed after %d accepted", round, killAt)
	}

	p = e.start()
	c := e.client(p)
	c.SetToken(acct.token)
	got := incomingSeqs(t, c, acct, nil)
	counts := map[outcome]int{}
	lostStored := 0
	for seq, o := range told {
		counts[o]++
		n := got[seq]
		if o == lost && n == 1 {
			lostStored++
		}
		switch {
		case o == accepted && n != 1:
			t.Errorf("message %d was answered 250 and is stored %d times", seq, n)
		case (o == unsent || o == refused) && n != 0:
			t.Errorf("message %d was %s and is stored %d times", seq, o, n)
		case o == lost && n > 1:
			t.Errorf("message %d (answer lost) is stored %d times", seq, n)
		}
		delete(got, seq)
	}
	for seq, n := range got {
		t.Errorf("message %d is stored %d times and was never sent", seq, n)
	}
	t.Logf("%d rounds: %v (of the lost answers, %d stored)", rounds, counts, lostStored)
	if counts[accepted] < rounds*3 {
		t.Fatalf("only %d messages accepted", counts[accepted])
	}
}

// incomingSeqs reads acct's incoming queue through the API of the
// restarted leapd and counts the X-Kill-Seq of each decrypted item.
// cache (item id to seq), if set, spares decrypting an item twice.
func incomingSeqs(t *testing.T, c *providerclient.Client, acct *killAccount, cache map[string]int) map[int]int {
	t.Helper()
	list, err := c.ListIncoming(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if list.More {
		t.Fatal("more than 1000 incoming items")
	}
	got := map[int]int{}
	for _, it := range list.Items {
		if seq, ok := cache[it.ID]; ok {
			got[seq]++
			continue
		}
		ct, err := c.Incoming(t.Context(), it.ID)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bytes.NewReader(ct)
		if bytes.HasPrefix(ct, []byte("-----BEGIN")) {
			blk, err := armor.Decode(r)
			if err != nil {
				t.Fatalf("item %s: %v", it.ID, err)
			}
			r = blk.Body
		}
		md, err := openpgp.ReadMessage(r, openpgp.EntityList{acct.key}, nil, nil)
		if err != nil {
			t.Fatalf("item %s does not decrypt: %v", it.ID, err)
		}
		plain, err := io.ReadAll(md.UnverifiedBody)
		if err != nil {
			t.Fatalf("item %s: %v", it.ID, err)
		}
		var seq int
		_, h, ok := bytes.Cut(plain, []byte("\nX-Kill-Seq: "))
		if !ok {
			t.Fatalf("item %s has no X-Kill-Seq:\n%.500s", it.ID, plain)
		}
		if _, err := fmt.Sscanf(string(h), "%d", &seq); err != nil {
			t.Fatalf("item %s: X-Kill-Seq: %v", it.ID, err)
		}
		got[seq]++
		if cache != nil {
			cache[it.ID] = seq
		}
	}
	return got
}

// pusher is one device pushing batches of its own documents, each
// batch moving every one of them to its next revision.
type pusher struct {
	ids    []string
	acked  map[string]uint64 // the revision last answered OK
	flight uint64            // a batch to acked+1 sent without an answer (0: none)
	oks    int
}

func docText(id string, rev uint64) []byte {
	return fmt.Appendf(nil, "%s@%d:%s", id, rev, strings.Repeat("c", int(rev%7)*100))
}

// check reads the pusher's documents from the provider: each is at the
// revision last answered OK or, all of the batch together, at the one
// in flight at the kill (one transaction per push), with that
// revision's content. The pusher goes on from there.
func (ps *pusher) check(t *testing.T, c *providerclient.Client) {
	t.Helper()
	applied := -1 // unknown; 0 not applied; 1 applied
	for _, id := range ps.ids {
		var rev uint64
		d, err := c.Doc(t.Context(), id)
		if providerclient.IsCode(err, providerapi.CodeNotFound) || err == nil && d == nil {
			rev = 0
		} else if err != nil {
			t.Fatalf("doc %s: %v", id, err)
		} else {
			rev = d.Rev
			if !bytes.Equal(d.Ciphertext, docText(id, rev)) {
				t.Fatalf("doc %s at rev %d holds %q", id, rev, d.Ciphertext)
			}
		}
		a := 0
		switch {
		case rev == ps.acked[id]:
		case ps.flight != 0 && rev == ps.acked[id]+1:
			a = 1
		default:
			t.Fatalf("doc %s is at rev %d; the last push answered OK made it %d (in flight: %v)", id, rev, ps.acked[id], ps.flight != 0)
		}
		if applied >= 0 && a != applied {
			t.Fatalf("a push in flight at the kill is applied to some of its documents only (%s)", id)
		}
		applied = a
	}
	if applied == 1 {
		for _, id := range ps.ids {
			ps.acked[id]++
		}
	}
	ps.flight = 0
}

// TestKillDuringPushes: devices push batches of documents; leapd is
// killed after the k-th push answered OK (k random, each round). After
// each restart every push answered OK is there; the one batch of each
// device in flight at the kill is there whole or not at all; nothing
// else is. The changes feed from 0 lists each document once, at the
// revision the documents hold.
func TestKillDuringPushes(t *testing.T) { killDuringPushes(t, nil) }

func killDuringPushes(t *testing.T, storeArgs []string) {
	e := newKillEnv(t)
	e.args = storeArgs
	p := e.start()
	acct := e.signup(p, "pusher")
	rounds := killRounds()
	const devices, perBatch = 3, 5
	ps := make([]*pusher, devices)
	for i := range ps {
		ps[i] = &pusher{acked: map[string]uint64{}}
		for j := range perBatch {
			ps[i].ids = append(ps[i].ids, fmt.Sprintf("d%d-%d", i, j))
		}
	}
	var mu sync.Mutex
	lostApplied, lostTotal := 0, 0
	for round := range rounds {
		if round > 0 {
			p = e.start()
		}
		c := e.client(p)
		c.SetToken(acct.token)
		for _, d := range ps {
			before := d.flight
			snap := d.acked[d.ids[0]]
			d.check(t, c)
			if before != 0 {
				lostTotal++
				if d.acked[d.ids[0]] != snap {
					lostApplied++
				}
			}
		}
		killAt := 3 + rand.IntN(30)
		var (
			wg     sync.WaitGroup
			oks    int
			killed = make(chan struct{})
			once   sync.Once
		)
		for _, d := range ps {
			wg.Go(func() {
				for {
					select {
					case <-killed:
						return
					default:
					}
					var batch []providerapi.DocPush
					for _, id := range d.ids {
						r := d.acked[id] + 1
						batch = append(batch, providerapi.DocPush{ID: id, BaseRev: r - 1, Rev: r, Ciphertext: docText(id, r)})
					}
					d.flight = batch[0].Rev
					res, err := c.Push(context.WithoutCancel(t.Context()), batch)
					var ae *providerclient.APIError
					if errors.As(err, &ae) {
						t.Errorf("push refused: %v", err)
						return
					}
					if err != nil {
						return // no answer: d.flight stays set
					}
					for _, r := range res.Results {
						if r.Status != providerapi.PushOK {
							t.Errorf("push of %s: %s", r.ID, r.Status)
							return
						}
					}
					for _, id := range d.ids {
						d.acked[id]++
					}
					d.flight = 0
					d.oks++
					mu.Lock()
					oks++
					if oks == killAt {
						once.Do(func() { e.kill(); close(killed) })
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		once.Do(func() { e.kill(); close(killed) })
		t.Logf("round %d: killed after %d pushes answered OK", round, killAt)
	}

	p = e.start()
	c := e.client(p)
	c.SetToken(acct.token)
	want := map[string]uint64{}
	for _, d := range ps {
		before, snap := d.flight, d.acked[d.ids[0]]
		d.check(t, c)
		if before != 0 {
			lostTotal++
			if d.acked[d.ids[0]] != snap {
				lostApplied++
			}
		}
		for _, id := range d.ids {
			want[id] = d.acked[id]
		}
	}
	seen := map[string]bool{}
	var since uint64
	for {
		ch, err := c.Changes(t.Context(), since, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ch.Changes {
			if seen[d.ID] {
				t.Errorf("doc %s twice in the changes feed", d.ID)
			}
			seen[d.ID] = true
			if w, ok := want[d.ID]; !ok || d.Rev != w {
				t.Errorf("changes feed: doc %s at rev %d, want %d (known: %v)", d.ID, d.Rev, w, ok)
			}
		}
		since = ch.LastSeq
		if !ch.More {
			break
		}
	}
	for id, w := range want {
		if w > 0 && !seen[id] {
			t.Errorf("doc %s (rev %d answered OK) is not in the changes feed", id, w)
		}
	}
	total := 0
	for _, d := range ps {
		total += d.oks
	}
	t.Logf("%d rounds: %d pushes answered OK; %d in flight at a kill, %d of them applied", rounds, total, lostTotal, lostApplied)
}

// submitOne submits one message on an authenticated submission
// connection and says what the client was told.
func submitOne(c *gosmtp.Client, from, to string, msg []byte) outcome {
	var se *gosmtp.SMTPError
	answered := func(err error, otherwise outcome) outcome {
		if errors.As(err, &se) {
			return refused
		}
		return otherwise
	}
	if err := c.Mail(from, nil); err != nil {
		return answered(err, unsent)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return answered(err, unsent)
	}
	w, err := c.Data()
	if err != nil {
		return answered(err, unsent)
	}
	if _, err := w.Write(msg); err != nil {
		return unsent
	}
	if err := w.Close(); err != nil {
		return answered(err, lost)
	}
	return accepted
}

// loopback25 is a loopback address whose port 25 is free: the relay
// delivers to port 25 only.
func loopback25(t *testing.T) string {
	t.Helper()
	for range 50 {
		ip := fmt.Sprintf("127.%d.%d.%d", 20+rand.IntN(200), 1+rand.IntN(250), 10+rand.IntN(200))
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "25"))
		if err != nil {
			continue
		}
		ln.Close()
		return ip
	}
	t.Fatal("no loopback address with a free port 25")
	return ""
}

// incomingWatch follows an account's notification stream across the
// restarts of its leapd and lets a test wait for its incoming counter.
type incomingWatch struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each event
	counter uint64
}

func watchIncoming(t *testing.T, c *providerclient.Client) *incomingWatch {
	w := &incomingWatch{changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = c.Events(ctx, func(ev providerapi.Event) {
				w.mu.Lock()
				w.counter = ev.Incoming
				close(w.changed)
				w.changed = make(chan struct{})
				w.mu.Unlock()
			})
			select { // the stream broke: not a hot loop of reconnects
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// next waits for the next event, or the test's end.
func (w *incomingWatch) next(t *testing.T) uint64 {
	w.mu.Lock()
	ch := w.changed
	w.mu.Unlock()
	select {
	case <-ch:
	case <-t.Context().Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counter
}

func (w *incomingWatch) now() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counter
}

// TestKillDuringRelay: a user submits messages for another provider
// (a second leapd, whose MX is the remote server); the sending leapd is
// killed after the k-th 250 of its submission (even rounds) or once the
// remote provider has k of the round's messages (odd rounds, the relay
// at work). After the restarts every message submission answered 250
// reaches the remote provider at least once, none refused or cut off
// before its final dot does, and the count of those that came twice is
// reported (the at-least-once window of docs/operations.md).
func TestKillDuringRelay(t *testing.T) { killDuringRelay(t, nil) }

// killDuringRelay: storeArgs are the sending leapd's (the remote one
// keeps the bbolt store).
func killDuringRelay(t *testing.T, storeArgs []string) {
	if os.Getenv("BITMASK_KILL_RELAY") != "1" {
		// On PostgreSQL the queue's claims are leases in the database:
		// the items a killed leapd had claimed wait for the lease's
		// end, 20 minutes, after its restart (docs/operations.md). On
		// bbolt (claims in memory) it ran in 25 s here, but hung past
		// 11 minutes once in a clean CI run, likely the claims'
		// deadlock found since (storage's claimMu): it runs by hand
		// until clean runs confirm that.
		t.Skip("run with BITMASK_KILL_RELAY=1 -timeout 30m (docs/operations.md)")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatal("the relay delivers to port 25 only: this test needs root, and BITMASK_REQUIRE_PEERS=1")
		}
		t.Skip("the relay delivers to port 25 only: run as root")
	}
	ip := loopback25(t)
	ns := dnssec.NewServer(t)
	z, err := ns.AddZone("remote.test")
	if err != nil {
		t.Fatal(err)
	}
	z.MustAdd("@ IN MX 10 mx", "mx IN A "+ip)

	remote := newKillEnv(t)
	remote.domain, remote.mx = "remote.test", net.JoinHostPort(ip, "25")
	pr := remote.start()
	bob := remote.signup(pr, "bob")
	bc := remote.client(pr)
	bc.SetToken(bob.token)
	watch := watchIncoming(t, bc)

	e := newKillEnv(t)
	// The test's DNS server is authoritative, not validating: its
	// answers are insecure, so the relay uses them without DANE.
	e.args = append([]string{"-dnssec-resolver", ns.Addr}, storeArgs...)
	p := e.start()
	alice := e.signup(p, "alice")
	from, to := "alice@"+killDomain, "bob@remote.test"

	// The relay opens a connection per queued message at once; past
	// the remote MX's cap of 10 per address (connections of the killed
	// leapd count until the remote notices them gone) it is answered
	// 421 and that message waits the relay's retry delay, a minute: a
	// run takes from seconds to two minutes.
	rounds := killRounds()
	const perRound = 8
	start := time.Now()
	told := map[int]outcome{}
	seq := 0
	for round := range rounds {
		if round > 0 {
			p = e.start()
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(e.bootstrap(p).CAPEM)
		c, err := gosmtp.DialStartTLS(p.submission, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", from, alice.token)); err != nil {
			t.Fatal(err)
		}
		duringSubmission := round%2 == 0
		k := 1 + rand.IntN(perRound-1)
		base := watch.now()
		acks := 0
		for range perRound {
			msg := fmt.Appendf(nil, "From: %s\r\nTo: %s\r\nSubject: relay %d\r\nX-Kill-Seq: %d\r\n\r\nbody %d\r\n", from, to, seq, seq, seq)
			o := submitOne(c, from, to, msg)
			told[seq] = o
			seq++
			if o != accepted {
				break
			}
			acks++
			if duringSubmission && acks == k {
				e.kill()
				break
			}
		}
		c.Close()
		if !duringSubmission {
			for watch.now() < base+uint64(k) && t.Context().Err() == nil {
				watch.next(t)
			}
			e.kill()
		}
		t.Logf("round %d (%.1fs): killed after %d submitted, the remote provider had %d of them", round, time.Since(start).Seconds(), acks, watch.now()-base)
	}

	// The last restart: everything answered 250 arrives.
	e.start()
	cache := map[string]int{}
	var got map[int]int
	for {
		got = incomingSeqs(t, bc, bob, cache)
		missing := 0
		for s, o := range told {
			if o == accepted && got[s] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if t.Context().Err() != nil {
			t.Fatalf("%d messages answered 250 never reached the remote provider", missing)
		}
		watch.next(t)
	}
	counts := map[outcome]int{}
	twice := 0
	for s, o := range told {
		counts[o]++
		n := got[s]
		switch {
		case (o == unsent || o == refused) && n != 0:
			t.Errorf("message %d was %s and reached the remote provider %d times", s, o, n)
		case n > 1:
			twice++
		}
		delete(got, s)
	}
	for s, n := range got {
		t.Errorf("message %d reached the remote provider %d times and was never submitted", s, n)
	}
	t.Logf("%d rounds: %v; %d delivered more than once; all there %.1fs after the start", rounds, counts, twice, time.Since(start).Seconds())
}
