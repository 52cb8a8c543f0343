package httpapi

import (
	"testing"
	"time"
)

// SetGuardClock sets the clock of s's failed-proof guard (tests).
func SetGuardClock(s *Server, now func() time.Time) {
	g := s.guard()
	g.mu.Lock()
	g.now = now
	g.mu.Unlock()
	if g.ceiling != nil {
		g.ceiling.mu.Lock()
		g.ceiling.now = now
		g.ceiling.mu.Unlock()
	}
}

// SetVerifyHook has fn called at each SRP proof verification, of real
// and made-up handshakes, until the test ends.
func SetVerifyHook(t testing.TB, fn func(login string, fake bool)) {
	verifyHook.Store(&fn)
	t.Cleanup(func() { verifyHook.Store(nil) })
}
