package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bitmask-go/bitmask/internal/testenv/dovecot"
)

// The IMAP benchmark's mailbox: the same messages for bitmaskd and for
// Dovecot, made by benchMail.
const (
	// rareWord is in the text of one message in rareEvery (and in none
	// of the generator's other words).
	rareWord  = "xylophone"
	rareEvery = 10007
	// commonWord is in the text of every message.
	commonWord = "the"
	// benchAppends is how many messages each APPEND rate is timed on.
	benchAppends = 500
	// appendMailbox is where they go, so INBOX stays as filled.
	appendMailbox = "Appends"
	// appendTries is how many times each APPEND rate is taken; the
	// median is reported.
	appendTries = 3
	// rawTries is how many times each raw FETCH row runs; the fastest
	// counts.
	rawTries = 5
)

// benchWords is the generator's vocabulary, most frequent first: common
// English words, then the vocabulary of office mail.
var benchWords = strings.Fields(`the of and to a in is that for it as was with be by on not he
this are or his from at which but have an they you were her she there been one all we their
has would when if so no will can more other its our about up out them what some could into
time only new these may then do first any like now my over such also after most made should
two well must before years where through much back those people because just good each how
me very still last own see work way even many make here same year take while state long day
again life world still might great old right never under between think know find help
place part small case week report meeting project budget team plan review release customer
office schedule update question answer market price order invoice payment contract draft
document version change issue problem result number group company service system account
manager support request detail information travel hotel flight conference agenda minutes
quarter figure forecast sales revenue cost saving hiring training policy security network
server backup storage database website design feature test launch deadline priority status
morning afternoon evening monday tuesday wednesday thursday friday weekend holiday lunch
coffee call phone email message letter note comment feedback proposal approval decision
colleague partner supplier vendor client board director department division region branch`)

// benchSender names the senders the generator writes from.
var benchSender = []string{"Alice Martin", "Bob Chen", "Carol Diaz", "David Okafor", "Eve Novak",
	"Frank Rossi", "Grace Kim", "Heidi Larsen", "Ivan Petrov", "Judy Moreau", "Mallory Singh", "Oscar Silva"}

// benchMail is message i of the IMAP benchmark's mailbox: about 10 KB,
// multipart/alternative with the same English-like text as plain text
// and as HTML, headers as a real mail client writes them. Every message
// holds commonWord; one in rareEvery also holds rareWord.
func benchMail(i int, to string) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	z := rand.NewZipf(r, 1.2, 2, uint64(len(benchWords)-1))
	sentence := func(min, max int) string {
		k := min + r.IntN(max-min+1)
		ws := make([]string, k)
		for j := range ws {
			ws[j] = benchWords[z.Uint64()]
		}
		ws[0] = strings.ToUpper(ws[0][:1]) + ws[0][1:]
		return strings.Join(ws, " ")
	}
	var paras []string
	size := 0
	for size < 4600 {
		var p []string
		for range 2 + r.IntN(5) {
			p = append(p, sentence(6, 18)+".")
		}
		if len(paras) == 0 {
			p[0] = "Hello, the notes from " + benchSender[(i+3)%len(benchSender)] + " are below."
		}
		s := strings.Join(p, " ")
		paras = append(paras, s)
		size += len(s) + 4
	}
	if i%rareEvery == 17 {
		paras[len(paras)/2] += " The " + rareWord + " arrived with the delivery."
	}
	from := benchSender[i%len(benchSender)]
	addr := strings.ToLower(strings.ReplaceAll(from, " ", ".")) + "@sender.test"
	date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	var b strings.Builder
	b.Grow(size*2 + 2048)
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", addr)
	fmt.Fprintf(&b, "Received: from mail.sender.test by mx.example.test with ESMTPS id %08x; %s\r\n", i, date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s <%s>\r\n", from, addr)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	if i%4 == 0 {
		fmt.Fprintf(&b, "Cc: %s <%s>\r\n", benchSender[(i+5)%len(benchSender)], "team@sender.test")
	}
	fmt.Fprintf(&b, "Subject: %s (%d)\r\n", sentence(3, 8), i)
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <bench-%d@sender.test>\r\n", i)
	if i > 0 && i%3 != 0 {
		fmt.Fprintf(&b, "In-Reply-To: <bench-%d@sender.test>\r\nReferences: <bench-%d@sender.test>\r\n", i-1, i-1)
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"=_b%d\"\r\n\r\n", i)
	fmt.Fprintf(&b, "--=_b%d\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", i)
	for _, p := range paras {
		b.WriteString(wrap(p, 76))
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--=_b%d\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><body>\r\n", i)
	for _, p := range paras {
		b.WriteString("<p>" + wrap(p, 76) + "</p>\r\n")
	}
	fmt.Fprintf(&b, "</body></html>\r\n--=_b%d--\r\n", i)
	return []byte(b.String())
}

// wrap breaks text into CRLF-ended lines of at most width characters
// (words longer than that stay whole).
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(s) {
		if n > 0 && n+1+len(w) > width {
			b.WriteString("\r\n")
			n = 0
		}
		if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

// imapTarget is a server the IMAP benchmark measures.
type imapTarget struct {
	addr, user, pass string
	// mem is the server's memory in KiB: resident, anonymous, peak.
	mem func() (rss, anon, peak int)
	// cpu, when known, is the CPU time the server has used.
	cpu func() time.Duration
}

// imapFigures is one pass of measureIMAP.
type imapFigures struct {
	sel, flags, env, bs, rawFlags, rawEnv, rawBS time.Duration
	single, searchRare, searchCommon             time.Duration
	rareHits, commonHits                         int
	appendNoDelay, appendNagle                   float64 // messages/s
	appendCPU                                    float64 // the server's CPU ms per APPEND
	rss, anon, peak                              int     // KiB, at the end
}

// measureIMAP runs the IMAP benchmark's commands against a server whose
// INBOX holds the n messages benchMail makes, through the same client
// code for every server: go-imap's client, a client that reads the
// answers off the socket without parsing them (the "raw" figures), and
// go-imap's client on connections with and without TCP_NODELAY for the
// APPEND rates. It checks that the UIDs hold the messages it expects.
func measureIMAP(b *testing.B, s imapTarget, n int) imapFigures {
	var f imapFigures
	c, err := imapclient.DialInsecure(s.addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(s.user, s.pass).Wait(); err != nil {
		b.Fatal(err)
	}
	raw := newRawIMAP(b, s.addr, s.user, s.pass)
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

	// SELECT is the best of rawTries, as the raw rows: one SELECT
	// takes a millisecond or so, and a collection or a page fault in
	// it moved the single figure between 0.5 and 3.9 ms from run to run.
	var t0 time.Time
	for try := range rawTries {
		t0 = time.Now()
		data, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			b.Fatal(err)
		}
		if d := time.Since(t0); try == 0 || d < f.sel {
			f.sel = d
		}
		if int(data.NumMessages) != n {
			b.Fatalf("SELECT: %d messages, want %d", data.NumMessages, n)
		}
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	for _, item := range []struct {
		d    *time.Duration
		opts *imap.FetchOptions
	}{
		{&f.flags, &imap.FetchOptions{Flags: true}},
		{&f.env, &imap.FetchOptions{Envelope: true}},
		{&f.bs, &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}},
	} {
		t0 = time.Now()
		if k := count(c.Fetch(all, item.opts)); k != n {
			b.Fatalf("fetch: %d messages", k)
		}
		*item.d = time.Since(t0)
	}
	for _, item := range []struct {
		d    *time.Duration
		what string
	}{{&f.rawEnv, "ENVELOPE"}, {&f.rawBS, "BODYSTRUCTURE"}, {&f.rawFlags, "FLAGS"}} {
		// The best of rawTries: on a machine shared with other work a
		// single run measures the load as much as the server.
		for try := range rawTries {
			t0 = time.Now()
			raw.run(b, "UID FETCH 1:* ("+item.what+")")
			if d := time.Since(t0); try == 0 || d < *item.d {
				*item.d = d
			}
		}
	}
	body := []*imap.FetchItemBodySection{{Peek: true}}
	t0 = time.Now()
	for i := range 1000 {
		uid := imap.UID(1 + (i*7919)%n)
		if k := count(c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: body})); k != 1 {
			b.Fatal("single fetch")
		}
	}
	f.single = time.Since(t0)
	// Message i is UID i+1 on every server.
	for _, i := range []int{0, n / 2, n - 1} {
		msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(i+1)), &imap.FetchOptions{BodySection: body}).Collect()
		if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 ||
			!strings.Contains(string(msgs[0].BodySection[0].Bytes), fmt.Sprintf("<bench-%d@", i)) {
			b.Fatalf("UID %d does not hold message %d (%v)", i+1, i, err)
		}
	}
	for _, item := range []struct {
		d    *time.Duration
		hits *int
		word string
	}{{&f.searchRare, &f.rareHits, rareWord}, {&f.searchCommon, &f.commonHits, commonWord}} {
		t0 = time.Now()
		res, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{item.word}}, nil).Wait()
		if err != nil {
			b.Fatal(err)
		}
		*item.d = time.Since(t0)
		*item.hits = len(res.AllUIDs())
	}
	// A wrong answer is logged, not fatal, so the run still prints
	// every figure; the tests are where search results are checked.
	if want := (n + rareEvery - 18) / rareEvery; f.rareHits != want {
		b.Logf("WRONG: SEARCH BODY %s on %s found %d messages, not %d", rareWord, s.addr, f.rareHits, want)
	}
	if f.commonHits != n {
		b.Logf("WRONG: SEARCH BODY %s on %s found %d messages, not %d", commonWord, s.addr, f.commonHits, n)
	}
	if err := c.Create(appendMailbox, nil).Wait(); err != nil && !strings.Contains(err.Error(), "ALREADYEXISTS") {
		b.Fatal(err)
	}
	var cpu0 time.Duration
	if s.cpu != nil {
		cpu0 = s.cpu()
	}
	// Each rate is the median of appendTries runs, the two kinds taking
	// turns: a single run measures whatever else the machine (and the
	// server, in its first minute) is doing as much as the APPENDs.
	var noDelay, nagle []float64
	for range appendTries {
		noDelay = append(noDelay, appendRate(b, s, true, n))
		nagle = append(nagle, appendRate(b, s, false, n))
	}
	b.Logf("APPEND rates on %s (msgs/s), TCP_NODELAY %.0f, without %.0f", s.addr, noDelay, nagle)
	f.appendNoDelay, f.appendNagle = median(noDelay), median(nagle)
	if s.cpu != nil {
		f.appendCPU = float64(s.cpu()-cpu0) / 1e6 / float64(2*appendTries*appendCount())
	}
	// Memory with the two clients still connected (Dovecot keeps a
	// process per session).
	f.rss, f.anon, f.peak = s.mem()
	return f
}

// median is the middle of v (the mean of the two middle values for an
// even count).
func median(v []float64) float64 {
	w := slices.Clone(v)
	slices.Sort(w)
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return (w[len(w)/2-1] + w[len(w)/2]) / 2
}

// appendCount is how many messages each APPEND rate is timed on:
// benchAppends, or BENCH_APPENDS.
func appendCount() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_APPENDS")); err == nil && v > 0 {
		return v
	}
	return benchAppends
}

// appendRate is how many APPENDs of 10 KB messages a second one client
// gets through, each waited for, on a connection with TCP_NODELAY (Go's
// default) or without it (Nagle's algorithm, as Python's imaplib has).
func appendRate(b *testing.B, s imapTarget, noDelay bool, n int) float64 {
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.(*net.TCPConn).SetNoDelay(noDelay); err != nil {
		b.Fatal(err)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Login(s.user, s.pass).Wait(); err != nil {
		b.Fatal(err)
	}
	msgs := make([][]byte, appendCount())
	for j := range msgs {
		msgs[j] = benchMail(n+j, "big@"+"example.test")
	}
	t0 := time.Now()
	for _, msg := range msgs {
		cmd := c.Append(appendMailbox, int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			b.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(msgs)) / time.Since(t0).Seconds()
}

// startDovecot runs the installed Dovecot with its Maildir filled with
// the same n messages, and one SELECT done (it builds its index then),
// or says why it cannot.
func startDovecot(b *testing.B, n int, to string) (*dovecot.Server, error) {
	d, err := dovecot.New()
	if err != nil {
		return nil, err
	}
	b.Cleanup(d.Close)
	fill := time.Now()
	if err := d.WriteMaildir(n, func(i int) []byte { return benchMail(i, to) }); err != nil {
		return nil, err
	}
	b.Logf("dovecot %s: wrote %d messages to its Maildir in %v", d.Version, n, time.Since(fill))
	if err := d.Start(); err != nil {
		return nil, err
	}
	warm := time.Now()
	c, err := imapclient.DialInsecure(d.Addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(dovecot.User, dovecot.Password).Wait(); err != nil {
		return nil, fmt.Errorf("login: %w (%s)", err, d.Log(3))
	}
	data, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("select: %w (%s)", err, d.Log(3))
	}
	if int(data.NumMessages) != n {
		return nil, fmt.Errorf("its INBOX has %d messages, not %d", data.NumMessages, n)
	}
	if err := c.Logout().Wait(); err != nil {
		return nil, err
	}
	b.Logf("dovecot: first SELECT (index build) took %v", time.Since(warm))
	return d, nil
}

// dovecotMem sums the memory of all of Dovecot's processes (master,
// login, auth, the IMAP session processes...), in KiB.
// dovecotCPU is the CPU time of Dovecot's processes (sessions that
// ended count in their parent's).
func dovecotCPU(d *dovecot.Server) time.Duration {
	var t time.Duration
	for _, pid := range d.Pids() {
		t += procCPU(pid)
	}
	return t
}

func dovecotMem(d *dovecot.Server) (rss, anon, peak int) {
	for _, pid := range d.Pids() {
		r, a, p := procRSS(pid)
		rss, anon, peak = rss+r, anon+a, peak+p
	}
	return rss, anon, peak
}
