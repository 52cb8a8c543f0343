package httpapi

import "time"

// SetLookupClock sets the clock of s's key-lookup bucket (tests).
func SetLookupClock(s *Server, now func() time.Time) {
	l, _ := lookupLimits.Load(s)
	lim := l.(*limiter)
	lim.mu.Lock()
	lim.now = now
	lim.mu.Unlock()
}
