package imapd

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// benchMessage makes message i: about 10 KB, multipart/alternative with
// text and HTML, headers like a real mail client's.
func benchMessage(i int) []byte {
	var sb strings.Builder
	sb.Grow(11 << 10)
	fmt.Fprintf(&sb, "Return-Path: <sender%d@example.org>\r\n", i%97)
	fmt.Fprintf(&sb, "Received: from mx.example.org by mx.bitmask.test with ESMTPS id %08x; Mon, 1 Jan 2024 10:00:00 +0000\r\n", i)
	fmt.Fprintf(&sb, "From: Sender %d <sender%d@example.org>\r\n", i%97, i%97)
	fmt.Fprintf(&sb, "To: Alice <alice@bitmask.test>, team%d@example.com\r\n", i%13)
	fmt.Fprintf(&sb, "Cc: =?utf-8?q?J=C3=BCrgen?= <juergen@example.de>\r\n")
	fmt.Fprintf(&sb, "Subject: Weekly status %d: deployment, budget and =?utf-8?q?caf=C3=A9?= plans\r\n", i)
	fmt.Fprintf(&sb, "Date: %s\r\n", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z))
	fmt.Fprintf(&sb, "Message-ID: <status-%d@example.org>\r\n", i)
	if i > 0 {
		fmt.Fprintf(&sb, "In-Reply-To: <status-%d@example.org>\r\nReferences: <status-%d@example.org>\r\n", i-1, i-1)
	}
	sb.WriteString("MIME-Version: 1.0\r\nX-Leap-Encryption: decrypted\r\nX-Leap-Signature: valid\r\n")
	sb.WriteString("Content-Type: multipart/alternative; boundary=\"=_alt\"\r\n\r\n")
	para := "The deployment went as planned and the budget is on track; next week we look at the caching layer again.\r\n"
	sb.WriteString("--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for range 40 {
		sb.WriteString(para)
	}
	sb.WriteString("--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n")
	for range 40 {
		sb.WriteString("<p>" + para[:len(para)-2] + "</p>\r\n")
	}
	sb.WriteString("</body></html>\r\n--=_alt--\r\n")
	return []byte(sb.String())
}

// addGenerated stores n generated messages in mbox (content made again on
// each Raw, meta computed once, in parallel).
func (f *fakeStore) addGenerated(mbox string, n int) {
	metas := make([][]byte, n)
	sizes := make([]int64, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				raw := benchMessage(i)
				metas[i], _ = Indexer(raw)
				sizes[i] = int64(len(raw))
			}
		}()
	}
	wg.Wait()
	f.gen = func(key string) []byte {
		i, _ := strconv.Atoi(key)
		return benchMessage(i)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	mb := f.mboxes[mbox]
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		var flags []string
		if i%3 == 0 {
			flags = []string{`\Seen`}
		}
		m := f.indexLocked(nil, mb, nil, metas[i], flags, sizes[i], base.Add(time.Duration(i)*time.Minute))
		m.genKey = strconv.Itoa(i)
	}
}

// drain reads a FETCH's responses to the end, as a mail client would.
func drain(b *testing.B, cmd *imapclient.FetchCommand) int {
	n := 0
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		if _, err := msg.Collect(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkFetch100k measures, with 100,000 messages of 10 KB in INBOX,
// through imapclient over loopback: SELECT (the first session's, which
// reads the mailbox), UID FETCH 1:* of FLAGS, ENVELOPE and BODYSTRUCTURE,
// and 1,000 single-message UID FETCH BODY.PEEK[]. The same commands are
// also timed with a client that reads the responses without parsing them
// ("raw-" metrics): the difference is imapclient's own parsing, which
// shares the machine's cores with the server here.
func BenchmarkFetch100k(b *testing.B) {
	const n = 100_000
	store := newFakeStore()
	store.addGenerated("INBOX", n)
	e := startServerWith(b, store)
	c := e.dial(nil)
	raw := e.raw()
	raw.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	all := imap.UIDSet{{Start: 1, Stop: 0}}
	rng := rand.New(rand.NewPCG(1, 2))

	type metric struct {
		name string
		d    time.Duration
	}
	var (
		sel, flags, env, bs, single = metric{name: "select-ms"}, metric{name: "fetch-flags-ms"}, metric{name: "fetch-envelope-ms"},
			metric{name: "fetch-bodystructure-ms"}, metric{name: "1000-body-fetches-ms"}
		rawSel, rawFlags, rawEnv, rawBS = metric{name: "raw-select-ms"}, metric{name: "raw-fetch-flags-ms"},
			metric{name: "raw-fetch-envelope-ms"}, metric{name: "raw-fetch-bodystructure-ms"}
	)
	timeRaw := func(m *metric, tag, cmd string) {
		t0 := time.Now()
		if _, st := raw.cmdCount(tag, cmd); !strings.HasPrefix(st, tag+" OK") {
			b.Fatalf("%s: %s", cmd, st)
		}
		m.d += time.Since(t0)
	}
	iters := 0
	for b.Loop() {
		iters++
		t0 := time.Now()
		data := mustSelect(b, c, "INBOX", false)
		sel.d += time.Since(t0)
		if data.NumMessages != n {
			b.Fatalf("%d messages", data.NumMessages)
		}
		for _, step := range []struct {
			m    *metric
			opts *imap.FetchOptions
		}{
			{&flags, &imap.FetchOptions{UID: true, Flags: true}},
			{&env, &imap.FetchOptions{UID: true, Envelope: true}},
			{&bs, &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}},
		} {
			t0 = time.Now()
			if got := drain(b, c.Fetch(all, step.opts)); got != n {
				b.Fatalf("fetched %d", got)
			}
			step.m.d += time.Since(t0)
		}
		t0 = time.Now()
		body := []*imap.FetchItemBodySection{{Peek: true}}
		for range 1000 {
			uid := imap.UID(1 + rng.IntN(n))
			msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: body}).Collect()
			if err != nil || len(msgs) != 1 || len(msgs[0].BodySection[0].Bytes) < 9000 {
				b.Fatalf("single fetch %d: %v", uid, err)
			}
		}
		single.d += time.Since(t0)
		if err := c.Unselect().Wait(); err != nil {
			b.Fatal(err)
		}

		timeRaw(&rawSel, "s", "SELECT INBOX")
		timeRaw(&rawFlags, "f", "UID FETCH 1:* (FLAGS)")
		timeRaw(&rawEnv, "e", "UID FETCH 1:* (ENVELOPE)")
		timeRaw(&rawBS, "b", "UID FETCH 1:* (BODYSTRUCTURE)")
		timeRaw(&metric{}, "u", "UNSELECT")
	}
	for _, m := range []metric{sel, flags, env, bs, single, rawSel, rawFlags, rawEnv, rawBS} {
		b.ReportMetric(float64(m.d)/float64(iters)/1e6, m.name)
	}
}
