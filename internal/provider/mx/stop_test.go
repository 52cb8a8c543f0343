package mx_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestStopRightAfterStart: an MX told to stop before its server has
// begun to accept (leapd stopped at once, a test that fails early) still
// returns, for SMTP and LMTP. go-smtp's Shutdown closes only the
// listeners its Serve has registered; one registered after it was
// accepted on for ever.
func TestStopRightAfterStart(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	m := mx.New(p, mx.Config{Hostname: hostname, Resolver: &mockdns.Resolver{}, Logger: testenv.Logger(t)})
	for i := range 50 {
		for _, lmtp := range []bool{false, true} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			done := make(chan error, 1)
			go func() {
				if lmtp {
					done <- m.ServeLMTP(ctx, ln)
				} else {
					done <- m.ServeSMTP(ctx, ln)
				}
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("round %d (lmtp %v): %v", i, lmtp, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d (lmtp %v): the MX did not stop", i, lmtp)
			}
			// And the port is free again.
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
				t.Fatalf("round %d: the listener is still open", i)
			}
		}
	}
}
