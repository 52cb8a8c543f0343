package docsync

import (
	"time"

	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
)

// quotaRetry is how long Run waits after the provider refused a push or
// a blob because the account is over its storage quota (507
// quota_exceeded): nothing changes at the provider until the user makes
// room, so retrying every minute would only send the same bytes again.
// The error stays in Status.LastError until a sync succeeds.
const quotaRetry = 10 * time.Minute

// nextBackoff is Run's wait after a sync that failed with err, the
// previous wait having been prev.
func nextBackoff(prev time.Duration, err error) time.Duration {
	if providerclient.IsCode(err, providerapi.CodeQuota) {
		return quotaRetry
	}
	return min(max(2*prev, time.Second), time.Minute)
}
