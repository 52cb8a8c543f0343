package mx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

const (
	// maxDKIMSignatures is how many DKIM signatures of one message are
	// verified (each costs a DNS lookup and a pass over the body).
	maxDKIMSignatures = 5
	// lookupTimeout bounds one DNS query.
	lookupTimeout = 10 * time.Second
	// SPF's limits (RFC 7208 §4.6.4), passed explicitly.
	spfMaxLookups     = 10
	spfMaxVoidLookups = 2
)

// envelope is what the SMTP conversation told us about the message.
type envelope struct {
	from string // MAIL FROM; "" for the null sender <>
	helo string
	ip   net.IP // the client's address; nil when not known (LMTP, unix socket)
}

// verdict is the result of the checks.
type verdict struct {
	spf   *authres.SPFResult // nil when not evaluated
	dkim  []*authres.DKIMResult
	dmarc *authres.DMARCResult
}

// header is the Authentication-Results field (RFC 8601), one result per
// line, with authservID as the authserv-id.
func (v *verdict) header(authservID string) string {
	var results []authres.Result
	if v.spf != nil {
		results = append(results, v.spf)
	}
	for _, d := range v.dkim {
		results = append(results, d)
	}
	results = append(results, v.dmarc)
	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(authservID)
	for _, r := range results {
		s := authres.Format(authservID, []authres.Result{r})
		s = strings.TrimSpace(strings.TrimPrefix(s, authservID+"; "))
		b.WriteString(";\r\n\t")
		b.WriteString(s)
	}
	b.WriteString("\r\n")
	return b.String()
}

// summary is a short form for the log.
func (v *verdict) summary() (spfRes, dkimRes, dmarcRes string) {
	spfRes = "-"
	if v.spf != nil {
		spfRes = string(v.spf.Value)
	}
	var ds []string
	for _, d := range v.dkim {
		ds = append(ds, string(d.Value))
	}
	return spfRes, strings.Join(ds, ","), string(v.dmarc.Value)
}

// authenticate runs SPF and DKIM (at the same time), then DMARC on their
// results. It never fails: trouble becomes temperror or permerror.
func (m *MX) authenticate(ctx context.Context, env envelope, msg []byte, parsed *message) *verdict {
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	defer cancel()
	v := &verdict{}
	spfc := make(chan *authres.SPFResult, 1)
	go func() { spfc <- m.checkSPF(ctx, env) }()
	var passed []string // domains of verified DKIM signatures
	v.dkim, passed = m.checkDKIM(ctx, msg, parsed)
	v.spf = <-spfc
	v.dmarc = m.checkDMARC(ctx, env, parsed, v.spf, passed)
	return v
}

// txt is a TXT lookup with a timeout, returning the resolver's errors
// unwrapped (go-msgauth tells temporary from permanent failures by
// their type).
func (m *MX) txt(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		return m.cfg.Resolver.LookupTXT(ctx, name)
	}
}

// timedResolver gives each query of the SPF library its own timeout.
type timedResolver struct{ r DNSResolver }

func (t timedResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	return t.r.LookupTXT(ctx, name)
}

func (t timedResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	return t.r.LookupMX(ctx, name)
}

func (t timedResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	return t.r.LookupIPAddr(ctx, host)
}

func (t timedResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	return t.r.LookupAddr(ctx, addr)
}

// checkSPF evaluates SPF (RFC 7208) for the MAIL FROM domain, or for the
// HELO name when the sender is null (RFC 7208 §2.4: then the identity
// checked is postmaster@HELO).
func (m *MX) checkSPF(ctx context.Context, env envelope) (res *authres.SPFResult) {
	if env.ip == nil {
		return nil
	}
	res = &authres.SPFResult{}
	sender := env.from
	if sender == "" {
		sender = "postmaster@" + env.helo
		res.Helo = clean(env.helo)
	} else {
		res.From = clean(env.from)
	}
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("mx: SPF check panicked", "panic", fmt.Sprint(p))
			res.Value, res.Reason = authres.ResultPermError, "internal error"
		}
	}()
	r, err := spf.CheckHostWithSender(env.ip, env.helo, sender,
		spf.WithContext(ctx),
		spf.WithResolver(timedResolver{m.cfg.Resolver}),
		spf.OverrideLookupLimit(spfMaxLookups),
		spf.OverrideVoidLookupLimit(spfMaxVoidLookups))
	res.Value = authres.ResultValue(r)
	switch r {
	case spf.Pass, spf.Fail, spf.SoftFail, spf.Neutral, spf.None:
	case spf.TempError, spf.PermError:
		if err != nil {
			res.Reason = clean(err.Error())
		}
	default:
		res.Value = authres.ResultPermError
	}
	return res
}

// checkDKIM verifies the message's DKIM signatures (RFC 6376). It
// returns one result per signature checked ("none" when there is none)
// and the domains (d=) whose signatures verified.
func (m *MX) checkDKIM(ctx context.Context, msg []byte, parsed *message) (res []*authres.DKIMResult, passed []string) {
	if parsed.noHeader || !parsed.has("DKIM-Signature") {
		return []*authres.DKIMResult{{Value: authres.ResultNone}}, nil
	}
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("mx: DKIM check panicked", "panic", fmt.Sprint(p))
			res, passed = []*authres.DKIMResult{{Value: authres.ResultPermError, Reason: "internal error"}}, nil
		}
	}()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT:        m.txt(ctx),
		MaxVerifications: maxDKIMSignatures,
	})
	for _, v := range verifs {
		if v == nil {
			continue
		}
		r := &authres.DKIMResult{Domain: clean(v.Domain), Identifier: clean(v.Identifier)}
		switch {
		case v.Err == nil:
			r.Value = authres.ResultPass
			passed = append(passed, smtpserver.NormDomain(v.Domain))
		case dkim.IsTempFail(v.Err):
			r.Value, r.Reason = authres.ResultTempError, clean(v.Err.Error())
		case dkim.IsPermFail(v.Err):
			r.Value, r.Reason = authres.ResultPermError, clean(v.Err.Error())
		default:
			r.Value, r.Reason = authres.ResultFail, clean(v.Err.Error())
		}
		res = append(res, r)
	}
	if len(res) == 0 {
		reason := "no signature could be read"
		if err != nil {
			reason = err.Error()
		}
		res = append(res, &authres.DKIMResult{Value: authres.ResultPermError, Reason: clean(reason)})
	}
	return res, passed
}

// checkDMARC looks up the From domain's DMARC policy (RFC 7489 §6.6.3:
// at the domain, else at its organizational domain) and checks whether
// SPF or DKIM passed for an aligned domain. The policy is recorded, not
// applied.
func (m *MX) checkDMARC(ctx context.Context, env envelope, parsed *message, spfRes *authres.SPFResult, dkimPassed []string) (res *authres.DMARCResult) {
	res = &authres.DMARCResult{}
	from, ok := parsed.fromDomain()
	if !ok {
		res.Value, res.Reason = authres.ResultPermError, "no single From address"
		return res
	}
	res.From = clean(from)
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("mx: DMARC check panicked", "panic", fmt.Sprint(p))
			res.Value, res.Reason = authres.ResultPermError, "internal error"
		}
	}()
	opts := &dmarc.LookupOptions{LookupTXT: m.txt(ctx)}
	rec, err := dmarc.LookupWithOptions(from, opts)
	policy := func() dmarc.Policy { return rec.Policy }
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if org := orgDomain(from); org != from {
			rec, err = dmarc.LookupWithOptions(org, opts)
			policy = func() dmarc.Policy {
				if rec.SubdomainPolicy != "" {
					return rec.SubdomainPolicy
				}
				return rec.Policy
			}
		}
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		res.Value = authres.ResultNone
		return res
	case dmarc.IsTempFail(err):
		res.Value, res.Reason = authres.ResultTempError, clean(err.Error())
		return res
	case err != nil:
		res.Value, res.Reason = authres.ResultPermError, clean(err.Error())
		return res
	}

	pass := false
	if spfRes != nil && spfRes.Value == authres.ResultPass {
		spfDomain := env.helo
		if at := strings.LastIndexByte(env.from, '@'); at >= 0 {
			spfDomain = env.from[at+1:]
		}
		pass = aligned(spfDomain, from, rec.SPFAlignment)
	}
	for _, d := range dkimPassed {
		pass = pass || aligned(d, from, rec.DKIMAlignment)
	}
	res.Value = authres.ResultFail
	if pass {
		res.Value = authres.ResultPass
	}
	res.Reason = clean("p=" + string(policy()))
	if spfRes == nil {
		res.Reason += ", SPF not evaluated: client address unknown"
	}
	return res
}

// aligned reports whether domain a aligns with the author domain b:
// equal in strict mode, with equal organizational domains in relaxed
// mode (RFC 7489 §3.1).
func aligned(a, b string, mode dmarc.AlignmentMode) bool {
	a, b = smtpserver.NormDomain(a), smtpserver.NormDomain(b)
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	return mode != dmarc.AlignmentStrict && orgDomain(a) == orgDomain(b)
}

// orgDomain is d's organizational domain (RFC 7489 §3.2): one label
// below its public suffix, from the public suffix list compiled into
// golang.org/x/net/publicsuffix. A public suffix, a single label or an
// address literal is its own.
func orgDomain(d string) string {
	d = smtpserver.NormDomain(d)
	od, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return od
}

// clean makes s safe inside a header field we write: smtpserver.Printable,
// at most 200 bytes, with no quotes or backslashes (go-msgauth's quoting
// does not escape those) and no semicolons (which separate results, and
// which naive parsers, go-msgauth's among them, split on even inside
// quotes).
func clean(s string) string {
	return smtpserver.Printable(unquotable.Replace(s), 200)
}

var unquotable = strings.NewReplacer(`"`, "?", `\`, "?", ";", "?")
