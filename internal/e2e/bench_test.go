package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv"
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

// BenchmarkIMAP100k: 100,000 messages of 10 KB in INBOX. The daemon runs
// as its own process (the real bitmaskd binary, unlocked by the IMAP
// login's local token), so its memory is measured alone; a go-imap client
// streams the answers over loopback.
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
		for i := 0; i < n; i += 1000 {
			batch := make([]mailstore.NewMessage, 0, 1000)
			for j := i; j < min(i+1000, n); j++ {
				batch = append(batch, mailstore.NewMessage{Raw: message10k(j, addr)})
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
		token = a.LocalToken()
		d.Close()
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
	raw := newRawIMAP(b, pr.imap, addr, token)
	b.ResetTimer()
	var sel, flags, env, bs, single, search, rawEnv, rawBS, rawFlags time.Duration
	count := func(cmd *imapclient.FetchCommand) int {
		k := 0
		for {
			m := cmd.Next()
			if m == nil {
				break
			}
			for m.Next() != nil {
			}
			k++
		}
		if err := cmd.Close(); err != nil {
			b.Fatal(err)
		}
		return k
	}
	for range b.N {
		t0 := time.Now()
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		sel += time.Since(t0)
		all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
		for _, item := range []struct {
			d    *time.Duration
			opts *imap.FetchOptions
		}{
			{&flags, &imap.FetchOptions{Flags: true}},
			{&env, &imap.FetchOptions{Envelope: true}},
			{&bs, &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}},
		} {
			t0 = time.Now()
			if k := count(c.Fetch(all, item.opts)); k != n {
				b.Fatalf("fetch: %d messages", k)
			}
			*item.d += time.Since(t0)
		}
		for _, item := range []struct {
			d    *time.Duration
			what string
		}{{&rawEnv, "ENVELOPE"}, {&rawBS, "BODYSTRUCTURE"}, {&rawFlags, "FLAGS"}} {
			t0 = time.Now()
			raw.run(b, "UID FETCH 1:* ("+item.what+")")
			*item.d += time.Since(t0)
		}
		t0 = time.Now()
		for i := range 1000 {
			uid := imap.UID(1 + (i*7919)%n)
			if k := count(c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})); k != 1 {
				b.Fatal("single fetch")
			}
		}
		single += time.Since(t0)
		t0 = time.Now()
		if _, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{fmt.Sprintf("line %d of", n/2)}}, nil).Wait(); err != nil {
			b.Fatal(err)
		}
		search += time.Since(t0)
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(float64(unlock.Milliseconds()), "unlock-ms")
	b.ReportMetric(per(sel), "select-ms")
	b.ReportMetric(per(flags), "fetch-flags-ms")
	b.ReportMetric(per(env), "fetch-envelope-ms")
	b.ReportMetric(per(bs), "fetch-bodystructure-ms")
	b.ReportMetric(per(single), "1000-single-fetches-ms")
	b.ReportMetric(per(rawFlags), "raw-fetch-flags-ms")
	b.ReportMetric(per(rawEnv), "raw-fetch-envelope-ms")
	b.ReportMetric(per(rawBS), "raw-fetch-bodystructure-ms")
	b.ReportMetric(per(search), "search-body-ms")
	rss, anon, peak := procRSS(pr.cmd.Process.Pid)
	b.ReportMetric(float64(rss)/1024, "daemon-rss-MB")
	b.ReportMetric(float64(anon)/1024, "daemon-anon-MB")
	b.ReportMetric(float64(peak)/1024, "daemon-peak-rss-MB")
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
