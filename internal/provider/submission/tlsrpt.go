package submission

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// SMTP TLS reporting (RFC 8460). The relay counts, per policy domain
// (the recipient's domain) and per policy type ("tlsa" for DANE, "sts"
// for MTA-STS, "no-policy-found" for opportunistic TLS), the TLS
// sessions it tried: successful ones (STARTTLS done and the policy's
// check passed) and failed ones by result type (§4.3):
// starttls-not-supported, certificate-host-mismatch,
// certificate-expired, certificate-not-trusted, validation-failure,
// tlsa-invalid, dnssec-invalid, sts-policy-fetch-error,
// sts-policy-invalid, with the MX host and the addresses involved.
//
// Once a day (the UTC day, when Run sees it change; and whenever
// WriteTLSReports is called) the counts become one report per policy
// domain in RFC 8460's JSON format (§4.4), written to DATADIR/tlsrpt/
// under the file name §5.3 gives a report sent by mail
// (RECEIVER!POLICY-DOMAIN!BEGIN!END.json, times in Unix seconds), and
// the counts start again. The counts of the day so far are saved in
// DATADIR/tlsrpt/current.json when Run stops and read at start.
//
// Sending: a report goes to the addresses the policy domain publishes
// in its TXT record at _smtp._tls.DOMAIN (rua=mailto: or https:). The
// relay does not send them itself; the admin (or a cron job) sends the
// files found in DATADIR/tlsrpt/ and removes them. The files name
// recipient domains (never addresses or content), so they are mode 0600
// like the rest of the data directory.

// TLS-RPT policy types (§4.4, "policy-type").
const (
	rptTLSA     = "tlsa"
	rptSTS      = "sts"
	rptNoPolicy = "no-policy-found"
)

// Bounds of what is counted: domains per period and distinct failure
// details per policy (past them, sessions are still counted in the
// summary, but no new detail line is added).
const (
	rptMaxDomains  = 10000
	rptMaxFailures = 100
)

type rptFailure struct {
	Result     string `json:"result"`
	SendingIP  string `json:"sending_ip,omitempty"`
	MX         string `json:"mx,omitempty"`
	ReceivedIP string `json:"receiving_ip,omitempty"`
	Code       string `json:"code,omitempty"`
	Info       string `json:"info,omitempty"`
	Count      int64  `json:"count"`
}

type rptPolicy struct {
	Strings   []string               `json:"strings,omitempty"`
	MXHosts   []string               `json:"mx_hosts,omitempty"`
	Successes int64                  `json:"successes"`
	Failures  int64                  `json:"failures"`
	Details   map[string]*rptFailure `json:"details,omitempty"`
}

// rptState is the counts of one period (saved in current.json).
type rptState struct {
	Start   time.Time                        `json:"start"`
	Domains map[string]map[string]*rptPolicy `json:"domains"` // domain -> policy type -> counts
}

type tlsReporter struct {
	dir     string // DATADIR/tlsrpt; "" keeps nothing on disk
	org     string // organization-name and the receiver in file names
	contact string
	log     *slog.Logger
	now     func() time.Time

	mu sync.Mutex
	st rptState
}

func newTLSReporter(dataDir, org, contact string, log *slog.Logger) *tlsReporter {
	r := &tlsReporter{org: org, contact: contact, log: log, now: time.Now}
	if dataDir != "" {
		r.dir = filepath.Join(dataDir, "tlsrpt")
	}
	r.st = rptState{Start: dayStart(r.now()), Domains: map[string]map[string]*rptPolicy{}}
	return r
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// rptSession is what is known of one session for the counts.
type rptSession struct {
	domain    string
	req       *Requirement // nil: no policy
	mx        string
	sendingIP string
	ip        string
}

func (r *tlsReporter) policyType(req *Requirement) string {
	switch {
	case req == nil:
		return rptNoPolicy
	case req.Policy == "dane":
		return rptTLSA
	default:
		return rptSTS
	}
}

// entry is the counts of domain's policy ptype, made when missing; nil
// past rptMaxDomains. r.mu is held.
func (r *tlsReporter) entry(domain, ptype string) *rptPolicy {
	d := r.st.Domains[domain]
	if d == nil {
		if len(r.st.Domains) >= rptMaxDomains {
			return nil
		}
		d = map[string]*rptPolicy{}
		r.st.Domains[domain] = d
	}
	p := d[ptype]
	if p == nil {
		p = &rptPolicy{}
		d[ptype] = p
	}
	return p
}

// success counts a session that did TLS as its policy requires.
func (r *tlsReporter) success(s rptSession) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.entry(s.domain, r.policyType(s.req)); p != nil {
		r.describe(p, s)
		p.Successes++
	}
}

// failure counts a failed session with its result type. A failure
// seen once ctx has ended is not counted: the relay stopping cut the
// lookup or the session, not the receiving domain (a lookup canceled at
// shutdown is no dnssec-invalid, a handshake canceled no
// validation-failure).
func (r *tlsReporter) failure(ctx context.Context, s rptSession, result, code, info string) {
	if r == nil || ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.entry(s.domain, r.policyType(s.req))
	if p == nil {
		return
	}
	r.describe(p, s)
	p.Failures++
	key := strings.Join([]string{result, s.sendingIP, s.mx, s.ip, code}, "|")
	f := p.Details[key]
	if f == nil {
		if len(p.Details) >= rptMaxFailures {
			return
		}
		if p.Details == nil {
			p.Details = map[string]*rptFailure{}
		}
		f = &rptFailure{Result: result, SendingIP: s.sendingIP, MX: s.mx, ReceivedIP: s.ip, Code: code, Info: printable(info, 200)}
		p.Details[key] = f
	}
	f.Count++
}

// policyFailure counts a failure of the policy itself (its lookup or
// fetch), before any session: one failed session for the domain (not
// once ctx has ended, as failure).
func (r *tlsReporter) policyFailure(ctx context.Context, domain, ptype, result, info string) {
	if r == nil {
		return
	}
	req := &Requirement{Policy: "mta-sts"}
	if ptype == rptTLSA {
		req.Policy = "dane"
	}
	r.failure(ctx, rptSession{domain: domain, req: req}, result, "", info)
}

// describe records the policy's strings and MX hosts (the last seen).
func (r *tlsReporter) describe(p *rptPolicy, s rptSession) {
	if s.req != nil && len(s.req.PolicyStrings) > 0 {
		p.Strings = s.req.PolicyStrings
	}
	if s.req != nil && len(s.req.MXHosts) > 0 {
		p.MXHosts = s.req.MXHosts
	} else if s.mx != "" && !slices.Contains(p.MXHosts, s.mx) && len(p.MXHosts) < 10 {
		p.MXHosts = append(p.MXHosts, s.mx)
	}
}

// tlsResult is the result type of a failed TLS handshake under req.
func tlsResult(req *Requirement, err error) (result, code string) {
	var host x509.HostnameError
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	switch {
	case errors.As(err, &host):
		return "certificate-host-mismatch", ""
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return "certificate-expired", ""
	case errors.As(err, &unk):
		return "certificate-not-trusted", ""
	case req != nil && req.Policy == "dane":
		return "validation-failure", "dane-no-match"
	default:
		return "validation-failure", ""
	}
}

// The report (RFC 8460 §4.4).
type tlsReport struct {
	OrganizationName string         `json:"organization-name"`
	DateRange        tlsReportRange `json:"date-range"`
	ContactInfo      string         `json:"contact-info"`
	ReportID         string         `json:"report-id"`
	Policies         []tlsReportPol `json:"policies"`
}

type tlsReportRange struct {
	Start string `json:"start-datetime"`
	End   string `json:"end-datetime"`
}

type tlsReportPol struct {
	Policy struct {
		Type    string   `json:"policy-type"`
		Strings []string `json:"policy-string,omitempty"`
		Domain  string   `json:"policy-domain"`
		MXHosts []string `json:"mx-host,omitempty"`
	} `json:"policy"`
	Summary struct {
		Successful int64 `json:"total-successful-session-count"`
		Failed     int64 `json:"total-failure-session-count"`
	} `json:"summary"`
	FailureDetails []tlsReportFailure `json:"failure-details,omitempty"`
}

type tlsReportFailure struct {
	ResultType          string `json:"result-type"`
	SendingMTAIP        string `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP         string `json:"receiving-ip,omitempty"`
	FailedSessionCount  int64  `json:"failed-session-count"`
	AdditionalInfo      string `json:"additional-information,omitempty"`
	FailureReasonCode   string `json:"failure-reason-code,omitempty"`
}

// reports makes the reports of state st, which ends at end: one per
// policy domain, by file name.
func (r *tlsReporter) reports(st rptState, end time.Time) map[string][]byte {
	out := map[string][]byte{}
	domains := make([]string, 0, len(st.Domains))
	for d := range st.Domains {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for _, d := range domains {
		rep := tlsReport{
			OrganizationName: r.org,
			DateRange:        tlsReportRange{Start: st.Start.UTC().Format(time.RFC3339), End: end.UTC().Format(time.RFC3339)},
			ContactInfo:      r.contact,
			ReportID:         fmt.Sprintf("%s_%s@%s", st.Start.UTC().Format("2006-01-02T15:04:05Z"), d, r.org),
		}
		types := make([]string, 0, len(st.Domains[d]))
		for t := range st.Domains[d] {
			types = append(types, t)
		}
		slices.Sort(types)
		for _, t := range types {
			c := st.Domains[d][t]
			var pol tlsReportPol
			pol.Policy.Type, pol.Policy.Domain = t, d
			pol.Policy.Strings, pol.Policy.MXHosts = c.Strings, c.MXHosts
			pol.Summary.Successful, pol.Summary.Failed = c.Successes, c.Failures
			for _, f := range c.Details {
				pol.FailureDetails = append(pol.FailureDetails, tlsReportFailure{
					ResultType: f.Result, SendingMTAIP: f.SendingIP, ReceivingMXHostname: f.MX,
					ReceivingIP: f.ReceivedIP, FailedSessionCount: f.Count, AdditionalInfo: f.Info,
					FailureReasonCode: f.Code,
				})
			}
			slices.SortFunc(pol.FailureDetails, func(a, b tlsReportFailure) int {
				return strings.Compare(a.ResultType+a.ReceivingMXHostname+a.ReceivingIP, b.ResultType+b.ReceivingMXHostname+b.ReceivingIP)
			})
			rep.Policies = append(rep.Policies, pol)
		}
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			continue // cannot happen: plain types
		}
		name := fmt.Sprintf("%s!%s!%d!%d.json", safeName(r.org), safeName(d), st.Start.Unix(), end.Unix())
		out[name] = b
	}
	return out
}

// safeName keeps a domain usable as part of a file name.
func safeName(s string) string {
	s = smtpserver.NormDomain(s)
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' {
			return c
		}
		return '_'
	}, s)
}

// rollover writes the reports of the period so far (ending at end) and
// starts a new one. It returns the files written.
func (r *tlsReporter) rollover(end time.Time) ([]string, error) {
	r.mu.Lock()
	st := r.st
	r.st = rptState{Start: end, Domains: map[string]map[string]*rptPolicy{}}
	r.mu.Unlock()
	if r.dir == "" || len(st.Domains) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, err
	}
	var files []string
	for name, b := range r.reports(st, end) {
		path := filepath.Join(r.dir, name)
		if err := writeRawAtomic(path, b); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	slices.Sort(files)
	r.log.Info("submission: TLS reports written", "dir", r.dir, "reports", len(files), "start", st.Start, "end", end)
	return files, nil
}

// tick writes the reports when the UTC day has changed since the period
// began.
func (r *tlsReporter) tick() {
	now := r.now()
	r.mu.Lock()
	start := r.st.Start
	r.mu.Unlock()
	if day := dayStart(now); day.After(start) {
		if _, err := r.rollover(day); err != nil {
			r.log.Error("submission: writing TLS reports", "err", err)
		}
	}
}

// saveCurrent keeps the counts so far for the next start.
func (r *tlsReporter) saveCurrent() {
	if r.dir == "" {
		return
	}
	r.mu.Lock()
	b, err := json.Marshal(r.st)
	r.mu.Unlock()
	if err == nil {
		err = os.MkdirAll(r.dir, 0o700)
	}
	if err == nil {
		err = writeRawAtomic(filepath.Join(r.dir, "current.json"), b)
	}
	if err != nil {
		r.log.Error("submission: saving the TLS report counts", "err", err)
	}
}

// loadCurrent reads the counts a previous run saved.
func (r *tlsReporter) loadCurrent() {
	if r.dir == "" {
		return
	}
	path := filepath.Join(r.dir, "current.json")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		r.log.Error("submission: reading the TLS report counts", "err", err)
		return
	}
	defer f.Close()
	var st rptState
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil || st.Start.IsZero() || st.Domains == nil {
		r.log.Error("submission: the TLS report counts are unreadable; starting again", "file", path, "err", err)
		return
	}
	sanitizeState(&st)
	r.mu.Lock()
	r.st = st
	r.mu.Unlock()
}

// sanitizeState drops what a damaged counts file may hold that the
// counting does not expect: missing entries, negative counts, more
// domains or details than counted live.
func sanitizeState(st *rptState) {
	n := 0
	for d, pols := range st.Domains {
		n++
		if pols == nil || d == "" || n > rptMaxDomains {
			delete(st.Domains, d)
			continue
		}
		for t, p := range pols {
			if p == nil || (t != rptTLSA && t != rptSTS && t != rptNoPolicy) {
				delete(pols, t)
				continue
			}
			p.Successes, p.Failures = max(p.Successes, 0), max(p.Failures, 0)
			k := 0
			for key, f := range p.Details {
				k++
				if f == nil || k > rptMaxFailures {
					delete(p.Details, key)
				}
			}
		}
		if len(pols) == 0 {
			delete(st.Domains, d)
		}
	}
}

// WriteTLSReports writes the TLS reports (RFC 8460) of the counts so
// far, one file per policy domain in DATADIR/tlsrpt/, starts counting
// again, and returns the files' paths. Run does this at each change of
// the UTC day; an admin may call it at other times.
func (s *Submission) WriteTLSReports() ([]string, error) {
	return s.rpt.rollover(s.rpt.now().UTC().Truncate(time.Second))
}

// writeRawAtomic writes b to path through a synced temporary file.
func writeRawAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+strconv.Itoa(os.Getpid())+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
