package smtpserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:25":                   "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:25":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb:cccc::9]:25": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:25":          "192.0.2.7",
	} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := addrKey(a); got != want {
			t.Errorf("addrKey(%s) = %q, want %q", in, got, want)
		}
	}
	if got := addrKey(&net.UnixAddr{Name: "/x", Net: "unix"}); got != "" {
		t.Errorf("unix address capped: %q", got)
	}
}

// dialFrom connects to addr from the loopback address from.
func dialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowConnectionsDoNotStarveOthers: clients on six addresses open
// 20 connections each and then send a byte now and then, never a whole
// command. Each address gets its 10 (MaxPerAddress) and the rest 421
// 4.7.0 naming the per-address limit; a client on another address is
// still served a whole transaction although the global cap (100) is
// more than the slow ones could fill without the per-address cap.
func TestSlowConnectionsDoNotStarveOthers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, be, _ := startServeWith(t, ctx, true, func(c *ServeConfig) {
		c.MaxConnections = 100
		c.HostnameInRefusal = true
	})
	go func() {
		for range be.inData {
			be.release <- struct{}{}
		}
	}()
	held, refused := 0, 0
	for i := range 6 {
		from := fmt.Sprintf("127.0.0.%d", 10+i)
		for range 20 {
			c := dialFrom(t, from, addr)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatalf("from %s: %v", from, err)
			}
			switch {
			case strings.HasPrefix(line, "220 "):
				held++
				_, _ = c.Write([]byte("E")) // slowly, never the line
			case line == "421 4.7.0 mx.test too many connections from your address, try again later\r\n":
				refused++
			default:
				t.Fatalf("from %s: %q", from, line)
			}
		}
	}
	if held != 60 || refused != 60 {
		t.Errorf("held %d, refused %d; want 60 and 60", held, refused)
	}
	c := dialFrom(t, "127.0.0.99", addr)
	tp := textproto.NewConn(c)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	step := func(code int, cmd string) {
		t.Helper()
		if cmd != "" {
			if err := tp.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		if _, msg, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("%q: %v %s", cmd, err, msg)
		}
	}
	step(220, "")
	step(250, "EHLO other.example")
	step(250, "MAIL FROM:<a@other.example>")
	step(250, "RCPT TO:<b@mx.test>")
	step(354, "DATA")
	step(250, "Subject: hi\r\n\r\nserved\r\n.")
	step(221, "QUIT")
}

// TestOldestWaitingConnectionMakesRoom: with every place taken by slow
// clients (from two addresses, under the per-address cap), a new
// client takes the place of the oldest connection waiting for its
// client; a connection in DATA, although older, is not the one closed
// and its message is still taken.
func TestOldestWaitingConnectionMakesRoom(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, be, _ := startServeWith(t, ctx, true, func(c *ServeConfig) {
		c.MaxConnections = 20
		c.EvictAfter = time.Nanosecond
	})
	go func() {
		for range be.inData {
			be.release <- struct{}{}
		}
	}()
	var slow []*textproto.Conn
	var conns []net.Conn
	for i := range 20 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 20+i%2), addr)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		tp := textproto.NewConn(c)
		if _, _, err := tp.ReadResponse(220); err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		if i == 0 {
			// The oldest is in DATA, sending its body slowly.
			for _, cmd := range []string{"EHLO slow.example", "MAIL FROM:<a@slow.example>", "RCPT TO:<b@mx.test>", "DATA"} {
				_ = tp.PrintfLine("%s", cmd)
				if _, _, err := tp.ReadResponse(0); err != nil && !strings.HasPrefix(err.Error(), "354") {
					t.Fatalf("%s: %v", cmd, err)
				}
			}
			_, _ = c.Write([]byte("Subject: slow\r\n"))
		} else {
			_, _ = c.Write([]byte("N"))
		}
		slow = append(slow, tp)
		conns = append(conns, c)
	}
	c := dialFrom(t, "127.0.0.99", addr)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	if _, msg, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("new client with every place taken: %v %s", err, msg)
	}
	_ = tp.PrintfLine("QUIT")
	if _, _, err := tp.ReadResponse(221); err != nil {
		t.Fatal(err)
	}
	// The second oldest (the oldest waiting for a command) was closed.
	if _, err := conns[1].Read(make([]byte, 1)); err == nil {
		t.Error("the oldest waiting connection was not closed")
	}
	// The one in DATA finishes its message.
	_, _ = conns[0].Write([]byte("\r\nbody\r\n.\r\n"))
	if _, msg, err := slow[0].ReadResponse(250); err != nil {
		t.Errorf("the connection in DATA: %v %s", err, msg)
	}
}
