package mx_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// TestSizeHintRefusedAtMail: a SIZE over the limit is refused at MAIL
// time with 552 5.3.4 (SIZE=MaxSize+1, which go-smtp's own check lets
// through); SIZE=10G, which go-smtp cannot parse as a 32-bit number,
// gets 501 5.5.4; nothing is allocated from either; mail within the
// limit still goes through on the same connection.
func TestSizeHintRefusedAtMail(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxSize: 1 << 20}})
	w.addUser("alice", true)
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(552, "MAIL FROM:<x@pass.example> SIZE=%d", 1<<20+1)
	r.cmd(552, "MAIL FROM:<x@pass.example> SIZE=%d", 4<<30-1)
	r.cmd(501, "MAIL FROM:<x@pass.example> SIZE=10000000000")
	r.cmd(250, "MAIL FROM:<x@pass.example> SIZE=%d", len(plainMsg))
	r.cmd(250, "RCPT TO:<alice@example.test>")
	if code, msg, err := r.data([]byte(plainMsg)); err != nil {
		t.Fatalf("within the limit: %d %s %v", code, msg, err)
	}
}

// TestTenThousandRecipients: RCPT past MaxRecipients gets 452 4.5.3
// each, the connection stays usable, and the message goes to the
// accepted recipient once.
func TestTenThousandRecipients(t *testing.T) {
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxRecipients: 100}})
	w.addUser("alice", true)
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(250, "MAIL FROM:<x@pass.example>")
	// Pipelined: 10,000 RCPT written by one goroutine, replies read
	// here.
	errc := make(chan error, 1)
	go func() {
		bw := bufio.NewWriter(r.c)
		for i := range 10000 {
			fmt.Fprintf(bw, "RCPT TO:<alice+%d@example.test>\r\n", i)
		}
		errc <- bw.Flush()
	}()
	ok, full := 0, 0
	for range 10000 {
		_ = r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
		code, msg, err := r.tp.ReadResponse(0)
		switch {
		case code == 250:
			ok++
		case code == 452 && strings.HasPrefix(msg, "4.5.3"):
			full++
		default:
			t.Fatalf("RCPT: %d %q %v", code, msg, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ok != 100 || full != 9900 {
		t.Errorf("accepted %d, refused %d; want 100 and 9900", ok, full)
	}
	if code, msg, err := r.data([]byte(plainMsg)); err != nil {
		t.Fatalf("DATA: %d %s %v", code, msg, err)
	}
	if n := len(w.items("alice")); n != 1 {
		t.Errorf("%d copies stored for one account, want 1", n)
	}
}

// TestBigMessagesAreSpooledToDisk: four 1.5 MiB messages in DATA at once,
// with 64 KiB in memory per message and a 1 MiB memory budget: while
// they arrive the spool holds them on disk and memory stays within the
// budget; each is then delivered whole, and the spool is empty after.
func TestBigMessagesAreSpooledToDisk(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, worldOptions{cfg: mx.Config{
		MaxSize: 4 << 20,
		Spool:   smtpserver.SpoolConfig{Dir: dir, InMemory: 64 << 10, MemoryBudget: 1 << 20},
	}})
	w.addUser("alice", true)
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", (3<<19)/64)
	msg := []byte("Subject: big\r\n\r\n" + body)
	const n = 4
	var conns []*raw
	half := len(msg) / 2
	for range n {
		r := dialRaw(t, "tcp", w.addr)
		r.cmd(250, "EHLO client.example")
		r.cmd(250, "MAIL FROM:<x@pass.example>")
		r.cmd(250, "RCPT TO:<alice@example.test>")
		r.cmd(354, "DATA")
		if _, err := r.c.Write(msg[:half]); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, r)
	}
	sp := w.mx.Spool()
	// Wait until all four halves are in the spool.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mem, disk := sp.InUse()
		if mem > 1<<20 {
			t.Fatalf("memory in use %d over the 1 MiB budget", mem)
		}
		if disk >= int64(n*(half-64<<10)) {
			t.Logf("four messages half received: memory %d bytes, disk %d bytes", mem, disk)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool holds %d bytes on disk, want the four halves", disk)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for _, r := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = r.c.Write(msg[half:])
			_, _ = r.c.Write([]byte(".\r\n"))
		}()
	}
	wg.Wait()
	for _, r := range conns {
		r.expect(250)
	}
	its := w.items("alice")
	if len(its) != n {
		t.Fatalf("%d stored, want %d", len(its), n)
	}
	_, _, rest := ours(t, decrypt(t, its[0], w.keys["alice"]))
	if rest != string(msg) {
		t.Errorf("stored message differs (%d bytes, want %d)", len(rest), len(msg))
	}
	if mem, disk := sp.InUse(); mem != 0 || disk != 0 {
		t.Errorf("spool in use after delivery: memory %d, disk %d", mem, disk)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool directory not empty: %d entries", len(ents))
	}
}

// TestRSSUnderSlowConnections: 1,000 connections from 100 loopback
// addresses (10 each, the per-address cap) that each send a byte and
// then nothing, with the global cap raised to let them all in; another
// client is served meanwhile, and the test process's VmRSS is logged
// (docs/benchmarks.md). Run: go test -run TestRSSUnderSlowConnections -v
// ./internal/provider/mx/
func TestRSSUnderSlowConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxConnections: 1010}})
	w.addUser("alice", true)
	before := vmRSS(t)
	var conns []net.Conn
	for i := range 100 {
		from := fmt.Sprintf("127.0.1.%d", 1+i)
		for range 10 {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
			c, err := d.Dial("tcp", w.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "220 ") {
				t.Fatalf("connection from %s: %q %v", from, line, err)
			}
			_, _ = c.Write([]byte("E"))
			conns = append(conns, c)
		}
	}
	// One more from a held address is refused by the per-address cap.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.1.1")}}
	c, err := d.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "421 4.7.0 ") || !strings.Contains(line, "your address") {
		t.Errorf("11th connection from one address: %q", line)
	}
	if err := w.send("x@pass.example", []string{"alice@example.test"}, plainMsg); err != nil {
		t.Fatalf("another client with 1,000 slow connections open: %v", err)
	}
	after := vmRSS(t)
	t.Logf("VmRSS with %d slow connections open: %d KiB (%d KiB before them; %.1f KiB each)",
		len(conns), after, before, float64(after-before)/float64(len(conns)))
}

// vmRSS is the test process's resident set in KiB.
func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestOversizedDataLeavesNothing: DATA of 8 times the limit gets 552
// 5.3.4 once the limit is passed (the rest is read and dropped), the
// spool is empty after, nothing is stored, and the connection takes the
// next message.
func TestOversizedDataLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, worldOptions{cfg: mx.Config{MaxSize: 1 << 20, Spool: smtpserver.SpoolConfig{Dir: dir, InMemory: 64 << 10}}})
	w.addUser("alice", true)
	r := dialRaw(t, "tcp", w.addr)
	r.cmd(250, "EHLO client.example")
	r.cmd(250, "MAIL FROM:<x@pass.example>")
	r.cmd(250, "RCPT TO:<alice@example.test>")
	big := []byte("Subject: huge\r\n\r\n" + strings.Repeat("x123456789abcdefx123456789abcdefx123456789abcdefx123456789abcd\r\n", (8<<20)/64))
	code, msg, err := r.data(big)
	if code != 552 || !strings.HasPrefix(msg, "5.3.4") {
		t.Fatalf("8 MiB over a 1 MiB limit: %d %q %v", code, msg, err)
	}
	if mem, disk := w.mx.Spool().InUse(); mem != 0 || disk != 0 {
		t.Errorf("spool in use after the refusal: memory %d, disk %d", mem, disk)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool directory not empty: %d entries", len(ents))
	}
	if n := len(w.items("alice")); n != 0 {
		t.Errorf("%d items stored", n)
	}
	r.cmd(250, "MAIL FROM:<x@pass.example>")
	r.cmd(250, "RCPT TO:<alice@example.test>")
	if code, msg, err := r.data([]byte(plainMsg)); err != nil {
		t.Fatalf("next message: %d %s %v", code, msg, err)
	}
}
