package submission

import (
	"context"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// stsRefreshEvery is how often Run looks for MTA-STS policies past half
// their max_age to fetch again.
const stsRefreshEvery = time.Hour

// initRelay sets up what the relay keeps in the data directory: the
// MTA-STS policy cache and the TLS report counts.
func (s *Submission) initRelay() error {
	s.sts.path = stsCachePath(s.cfg.DataDir)
	if s.sts.path == "" {
		s.log.Warn("submission: no data directory: MTA-STS policies are cached in memory only, TLS reports are not written")
	}
	if err := s.sts.load(); err != nil {
		return err
	}
	s.rpt = newTLSReporter(s.cfg.DataDir, smtpserver.NormDomain(s.cfg.Hostname), "postmaster@"+smtpserver.NormDomain(s.p.Domain()), s.log)
	s.rpt.loadCurrent()
	s.sts.report = func(ctx context.Context, domain, result, info string) {
		s.rpt.policyFailure(ctx, domain, rptSTS, result, info)
	}
	return nil
}

// background is Run's periodic work besides the queue: the MTA-STS
// refresh (in its own goroutine, one at a time) and the daily TLS
// reports. It returns at once; the refresh under way ends with ctx.
func (s *Submission) background(ctx context.Context, last *time.Time, busy chan struct{}) {
	s.rpt.tick()
	if time.Since(*last) < stsRefreshEvery {
		return
	}
	select {
	case busy <- struct{}{}:
	default:
		return
	}
	*last = time.Now()
	go func() {
		defer func() { <-busy }()
		s.sts.refreshStale(ctx)
	}()
}
