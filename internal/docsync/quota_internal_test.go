package docsync

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
)

// TestQuotaRefusalBacksOff: a 507 quota_exceeded (wrapped, as a sync
// round returns it) waits quotaRetry; other failures double from a second
// to a minute as before.
func TestQuotaRefusalBacksOff(t *testing.T) {
	quota := fmt.Errorf("docsync: pushing: %w", &providerclient.APIError{Status: http.StatusInsufficientStorage, Code: providerapi.CodeQuota, Message: "storage quota exceeded"})
	if got := nextBackoff(0, quota); got != quotaRetry {
		t.Errorf("after a quota refusal: %v, want %v", got, quotaRetry)
	}
	other := errors.New("connection refused")
	for _, c := range []struct{ prev, want time.Duration }{{0, time.Second}, {time.Second, 2 * time.Second}, {time.Minute, time.Minute}, {quotaRetry, time.Minute}} {
		if got := nextBackoff(c.prev, other); got != c.want {
			t.Errorf("nextBackoff(%v, other) = %v, want %v", c.prev, got, c.want)
		}
	}
}
