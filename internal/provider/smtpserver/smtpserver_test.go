package smtpserver

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestTooManyConnections: the connection over the limit gets 421 (with
// the hostname when one is set) and is closed; closing one frees its
// place.
func TestTooManyConnections(t *testing.T) {
	for _, host := range []string{"", "mx.example"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l := NewListener(ln, ListenerConfig{Name: "test", Hostname: host, MaxConnections: 1, Logger: slog.New(slog.DiscardHandler)})
		accepted := make(chan net.Conn, 2)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}
		}()
		c1, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s1 := <-accepted
		if ConnOf(s1) == nil || ConnOf(tls.Server(s1, &tls.Config{})) != s1 {
			t.Errorf("ConnOf does not find the Conn")
		}
		c2, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c2).ReadString('\n')
		want := "421 4.7.0 too many connections, try again later\r\n"
		if host != "" {
			want = "421 4.7.0 " + host + " too many connections, try again later\r\n"
		}
		if err != nil || line != want {
			t.Errorf("over the limit: %q, %v; want %q", line, err, want)
		}
		c2.Close()
		s1.Close()
		c1.Close()
		c3, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		select {
		case s3 := <-accepted:
			s3.Close()
		case <-time.After(10 * time.Second):
			t.Error("a freed place was not taken")
		}
		c3.Close()
		l.BeginShutdown()
		if !l.ShuttingDown() || l.BeginData(nil) {
			t.Error("BeginData after BeginShutdown without FinishData")
		}
		ln.Close()
		for range accepted {
		}
	}
}

func TestFinishData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := NewListener(ln, ListenerConfig{MaxConnections: 1, FinishData: true, Logger: slog.New(slog.DiscardHandler)})
	l.BeginShutdown()
	if !l.BeginData(nil) {
		t.Fatal("FinishData: BeginData refused after BeginShutdown")
	}
	l.EndData(nil)
	l.CloseAll()
	if l.BeginData(nil) {
		t.Fatal("BeginData after CloseAll")
	}
	l.WaitData()
}
