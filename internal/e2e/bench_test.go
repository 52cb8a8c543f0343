package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/dovecot"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// message10k is a 10 KB message with a small MIME structure.
func message10k(i int, to string) []byte {
	body := strings.Repeat(fmt.Sprintf("line %d of a message that is about ten kilobytes long.\r\n", i), 160)
	return []byte(fmt.Sprintf("From: Sender %d <sender%d@sender.test>\r\nTo: %s\r\nSubject: Benchmark message %d\r\nDate: %s\r\nMessage-ID: <bench-%d@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>%d</p>\r\n--b--\r\n",
		i, i, to, i, time.Now().UTC().Format(time.RFC1123Z), i, body, i))
}

// BenchmarkIncoming: MX accept to stored in INBOX, 10 KB messages.
func BenchmarkIncoming(b *testing.B) {
	const n = 500
	p := testenv.StartProvider(b, testenv.Options{})
	r := testenv.StartDaemon(b, testenv.DaemonOptions{})
	addr := "bench@" + testenv.Domain
	a, err := r.CreateUser(context.Background(), addr, []byte(password), p.Ref(), "")
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := range b.N {
		start := time.Now()
		c := dialMX(b, p)
		for j := range n {
			sendOn(b, c, "s@sender.test", addr, message10k(i*n+j, addr))
		}
		c.Close()
		testenv.Eventually(b, 5*time.Minute, "all in INBOX", func() bool {
			info, err := a.Mail.Mailbox("INBOX")
			return err == nil && int(info.Messages) >= (i+1)*n
		})
		total += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
}

// BenchmarkMXToIdle: from the MX's 250 to the IMAP IDLE notification.
func BenchmarkMXToIdle(b *testing.B) {
	const n = 100
	p := testenv.StartProvider(b, testenv.Options{})
	r := testenv.StartDaemon(b, testenv.DaemonOptions{})
	addr := "idle@" + testenv.Domain
	a, err := r.CreateUser(context.Background(), addr, []byte(password), p.Ref(), "")
	if err != nil {
		b.Fatal(err)
	}
	d := &device{r, a}
	var last atomic.Uint32
	seen := make(chan uint32, 1000)
	c := d.imap(b, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				last.Store(*data.NumMessages)
				seen <- *data.NumMessages
			}
		},
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	mx := dialMX(b, p)
	defer mx.Close()
	for i := range n * b.N {
		start := time.Now()
		sendOn(b, mx, "s@sender.test", addr, message10k(i, addr))
		for {
			select {
			case v := <-seen:
				if v < uint32(i+1) {
					continue
				}
			case <-time.After(30 * time.Second):
				b.Fatal("no IDLE notification")
			}
			break
		}
		lat = append(lat, time.Since(start))
	}
	idle.Close()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkIMAP100k: 100,000 messages of 10 KB in INBOX
// (BENCH_IMAP_MESSAGES=N for fewer), measured side by side with
// Dovecot in the same run through the same client code (measureIMAP).
// The daemon runs as its own process (the real bitmaskd binary,
// unlocked by the IMAP login's local token), so its memory is measured
// alone; Dovecot, when installed, runs from a temporary directory with
// the same messages in its Maildir. Dovecot's figures are reported as
// dovecot-<metric>; when it cannot run, the log says
// "dovecot: unavailable (reason)" and only bitmaskd's are reported.
func BenchmarkIMAP100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_IMAP_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	bin := buildBitmaskd(b)
	p := testenv.StartProvider(b, testenv.Options{})
	dir := b.TempDir()
	addr := "big@" + testenv.Domain
	var token string
	{
		var offline atomic.Bool
		d := testenv.NewDaemon(b, testenv.DaemonOptions{Dir: dir, Offline: offline.Load})
		a, err := d.CreateUser(context.Background(), addr, []byte(password), p.Ref(), "")
		if err != nil {
			b.Fatal(err)
		}
		offline.Store(true) // fill locally; the provider is not what is measured
		fill := time.Now()
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < n; i += 1000 {
			batch := make([]mailstore.NewMessage, 0, 1000)
			for j := i; j < min(i+1000, n); j++ {
				batch = append(batch, mailstore.NewMessage{Raw: benchMail(j, addr), Date: base.Add(time.Duration(j) * time.Second)})
			}
			if _, err := a.Mail.AppendBatch(context.Background(), "INBOX", batch); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("filled %d messages in %v", n, time.Since(fill))
		// Measured synced, as a device with this mailbox would be: the
		// daemon under test has nothing to push.
		offline.Store(false)
		synced := time.Now()
		if err := a.Docs.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		if st := a.Docs.Status(); st.Pending != 0 {
			b.Fatalf("%d documents still to push", st.Pending)
		}
		b.Logf("pushed them to the provider in %v", time.Since(synced))
		// SEARCH BODY is measured with the full-text index built, as a
		// device that has had the mailbox a while has it (the index
		// builds in the background after login and is kept on disk).
		if a.Index != nil {
			indexing := time.Now()
			msgs, err := a.Mail.Messages("INBOX")
			if err != nil {
				b.Fatal(err)
			}
			next := 0
			if err := a.Index.WaitFor(context.Background(), func() bool {
				for next < len(msgs) && a.Index.Indexed(msgs[next].ID) {
					next++
				}
				return next == len(msgs)
			}); err != nil {
				b.Fatal(err)
			}
			b.Logf("full-text index built in %v", time.Since(indexing))
		}
		token = a.LocalToken()
		d.Close()
	}
	dc, err := startDovecot(b, n, addr)
	if err != nil {
		b.Logf("dovecot: unavailable (%v)", err)
		dc = nil
	}
	pr := startBitmaskd(b, bin, dir, "-imap", "127.0.0.1:0")
	t0 := time.Now()
	c, err := imapclient.DialInsecure(pr.imap, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(addr, token).Wait(); err != nil {
		b.Fatal(err)
	}
	unlock := time.Since(t0)
	ours := imapTarget{cpu: func() time.Duration { return procCPU(pr.cmd.Process.Pid) }, addr: pr.imap, user: addr, pass: token, mem: func() (int, int, int) {
		b.Logf("bitmaskd's largest mappings: %s", procTopMaps(pr.cmd.Process.Pid, 6))
		return procRSS(pr.cmd.Process.Pid)
	}}
	var theirs imapTarget
	if dc != nil {
		theirs = imapTarget{cpu: func() time.Duration { return dovecotCPU(dc) }, addr: dc.Addr, user: dovecot.User, pass: dovecot.Password, mem: func() (int, int, int) { return dovecotMem(dc) }}
	}
	b.ResetTimer()
	var sums [2][]float64
	for range b.N {
		for k, s := range []imapTarget{ours, theirs} {
			if s.addr == "" {
				continue
			}
			// What the harness wrote (Dovecot's Maildir, a gigabyte at
			// 100,000 messages) is still being written back to the disk
			// when the measuring starts, and a server's disk syncs would
			// wait for it: each server starts with nothing of anyone
			// else's left to write.
			t0 := time.Now()
			syscall.Sync()
			b.Logf("sync before measuring %s: %v", s.addr, time.Since(t0))
			f := measureIMAP(b, s, n)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			v := []float64{ms(f.sel), ms(f.flags), ms(f.env), ms(f.bs), ms(f.single), ms(f.rawFlags), ms(f.rawEnv), ms(f.rawBS),
				ms(f.searchRare), ms(f.searchCommon), f.appendNoDelay, f.appendNagle, f.appendCPU,
				float64(f.rss) / 1024, float64(f.anon) / 1024, float64(f.peak) / 1024}
			if sums[k] == nil {
				sums[k] = make([]float64, len(v))
			}
			for i := range v {
				sums[k][i] += v[i]
			}
		}
	}
	b.StopTimer()
	names := []string{"select-ms", "fetch-flags-ms", "fetch-envelope-ms", "fetch-bodystructure-ms", "1000-single-fetches-ms",
		"raw-fetch-flags-ms", "raw-fetch-envelope-ms", "raw-fetch-bodystructure-ms",
		"search-body-rare-ms", "search-body-common-ms", "append-nodelay-msgs/s", "append-nagle-msgs/s", "append-cpu-ms",
		"daemon-rss-MB", "daemon-anon-MB", "daemon-peak-rss-MB"}
	b.ReportMetric(float64(unlock.Milliseconds()), "unlock-ms")
	for k, prefix := range []string{"", "dovecot-"} {
		if sums[k] == nil {
			continue
		}
		for i, name := range names {
			b.ReportMetric(sums[k][i]/float64(b.N), prefix+name)
		}
	}
}

// procCPU is the CPU time (user and system) a process has used, with
// that of its children it has waited for (Dovecot's ended sessions).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// procTopMaps lists a process's k mappings with the most resident
// memory (KiB resident, of which anonymous, and what is mapped), to see
// where the RSS of the benchmark is.
func procTopMaps(pid, k int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err.Error()
	}
	type mapping struct {
		name      string
		rss, anon int
	}
	var maps []*mapping
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			name := "[anon]"
			if len(f) >= 6 {
				name = filepath.Base(f[5])
			}
			maps = append(maps, &mapping{name: name})
		case len(maps) > 0 && len(f) >= 2 && f[0] == "Rss:":
			maps[len(maps)-1].rss, _ = strconv.Atoi(f[1])
		case len(maps) > 0 && len(f) >= 2 && f[0] == "Anonymous:":
			maps[len(maps)-1].anon, _ = strconv.Atoi(f[1])
		}
	}
	slices.SortFunc(maps, func(a, b *mapping) int { return b.rss - a.rss })
	var out []string
	for _, m := range maps[:min(k, len(maps))] {
		out = append(out, fmt.Sprintf("%s %d KiB (%d anon)", m.name, m.rss, m.anon))
	}
	return strings.Join(out, ", ")
}

// procRSS is a process's VmRSS, RssAnon and VmHWM (peak RSS) in KiB.
func procRSS(pid int) (rss, anon, peak int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		switch k {
		case "VmRSS":
			rss = n
		case "RssAnon":
			anon = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, anon, peak
}

// BenchmarkSend: through the local SMTP to the provider, 10 KB messages
// encrypted to one recipient, and to ten; the time from the end of DATA
// to the 250, and the rate at which the outbox relays.
func BenchmarkSend(b *testing.B) {
	for _, nrcpt := range []int{1, 10} {
		b.Run(fmt.Sprintf("rcpts=%d", nrcpt), func(b *testing.B) {
			const n = 200
			p := testenv.StartProvider(b, testenv.Options{})
			r := testenv.StartDaemon(b, testenv.DaemonOptions{})
			addr := "sender@" + testenv.Domain
			a, err := r.CreateUser(context.Background(), addr, []byte(password), p.Ref(), "")
			if err != nil {
				b.Fatal(err)
			}
			var rcpts []string
			for i := range nrcpt {
				login := fmt.Sprintf("rcpt%02d", i)
				rcpts = append(rcpts, publishUser(b, p, login))
			}
			c := dialSubmit(b, r.SMTPAddr, addr, a.LocalToken())
			defer c.Close()
			var lat []time.Duration
			var total time.Duration
			for i := range n * b.N {
				msg := message10k(i, strings.Join(rcpts, ", "))
				msg = bytes.Replace(msg, []byte("From: Sender "), []byte("X-Was: "), 1)
				msg = append([]byte("From: "+addr+"\r\n"), msg...)
				start := time.Now()
				if err := c.Mail(addr, nil); err != nil {
					b.Fatal(err)
				}
				for _, rc := range rcpts {
					if err := c.Rcpt(rc, nil); err != nil {
						b.Fatal(err)
					}
				}
				w, err := c.Data()
				if err != nil {
					b.Fatal(err)
				}
				w.Write(msg)
				endOfData := time.Now()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(endOfData))
				total += time.Since(start)
			}
			t0 := time.Now()
			testenv.Eventually(b, 5*time.Minute, "outbox drained", func() bool { return a.Outbox.Pending() == 0 })
			relay := time.Since(t0) + total
			slices.Sort(lat)
			b.ReportMetric(float64(n*b.N)/relay.Seconds(), "msgs/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// publishUser makes an account with a published key at the provider
// (without a device) and returns its address.
func publishUser(t testing.TB, p *testenv.Provider, login string) string {
	addr := login + "@" + testenv.Domain
	ctx := context.Background()
	if err := p.Store.CreateUser(ctx, &storage.User{Login: login, Created: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	e, err := pgpkey.Generate(addr, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := pgpkey.ArmorPublic(e)
	if err := p.Store.PutKey(ctx, addr, []byte(pub)); err != nil {
		t.Fatal(err)
	}
	return addr
}

func dialSubmit(t testing.TB, addr, user, token string) *smtp.Client {
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("bench.localhost"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", user, token)); err != nil {
		t.Fatal(err)
	}
	return c
}

// rawIMAP is a client that does not parse what it reads: it measures the
// server (and loopback) alone, as the answers stream in.
type rawIMAP struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func newRawIMAP(t testing.TB, addr, user, pass string) *rawIMAP {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawIMAP{conn: c, r: bufio.NewReaderSize(c, 1<<20)}
	if _, err := r.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.run(t, fmt.Sprintf("LOGIN %q %q", user, pass))
	r.run(t, "SELECT INBOX")
	return r
}

// run sends a command and reads until its tagged answer.
func (r *rawIMAP) run(t testing.TB, cmd string) {
	r.n++
	tag := fmt.Sprintf("R%d ", r.n)
	if _, err := fmt.Fprintf(r.conn, "%s%s\r\n", tag, cmd); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(line, []byte(tag)) {
			if !bytes.HasPrefix(line[len(tag):], []byte("OK")) {
				t.Fatalf("%s: %s", cmd, line)
			}
			return
		}
	}
}
