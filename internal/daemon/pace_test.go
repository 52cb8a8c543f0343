package daemon

import (
	"testing"
	"time"
)

// TestSessionWait: the session's renewal and the key's rotation look
// again after half of what is left of the session (at least a second),
// or after an hour without a session.
func TestSessionWait(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name     string
		online   bool
		expires  time.Time
		min, max time.Duration
	}{
		{"no session", false, now.Add(time.Hour), time.Hour, time.Hour},
		{"no expiry", true, time.Time{}, time.Hour, time.Hour},
		{"half of what is left", true, now.Add(10 * time.Hour), 4*time.Hour + 59*time.Minute, 5 * time.Hour},
		{"at least a second", true, now.Add(-time.Minute), time.Second, time.Second},
	} {
		if got := sessionWait(c.online, c.expires); got < c.min || got > c.max {
			t.Errorf("%s: waits %v, want %v to %v", c.name, got, c.min, c.max)
		}
	}
}
