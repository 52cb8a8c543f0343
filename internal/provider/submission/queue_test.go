package submission

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	s := &Submission{cfg: Config{RetryBase: time.Minute, RetryMax: time.Hour}}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("after attempt %d: %v, want %v", i+1, got, w)
		}
	}
	if got := s.backoff(10000); got != time.Hour {
		t.Errorf("after many attempts: %v", got)
	}
}
