package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// deliveryError is why a recipient was not delivered in an attempt (in
// the spirit of maddy's exterrors.SMTPError): the remote reply code if
// a server gave one, the enhanced status (RFC 3463), a diagnostic safe
// to show the sender in a delivery status notification, the server it
// came from, and whether it is permanent (5xx: no retry) or temporary.
type deliveryError struct {
	perm   bool
	code   int    // remote reply code; 0 when no server replied
	status string // e.g. "4.4.1"
	msg    string
	mta    string // the MX host that replied; "" when none did
}

func (e *deliveryError) Error() string {
	if e.code != 0 {
		return fmt.Sprintf("%s said: %d %s %s", e.mta, e.code, e.status, e.msg)
	}
	return e.status + " " + e.msg
}

func tempErr(status, msg string) *deliveryError {
	return &deliveryError{status: status, msg: printable(msg, 512)}
}

func permErr(status, msg string) *deliveryError {
	return &deliveryError{perm: true, status: status, msg: printable(msg, 512)}
}

// replyErr is the outcome of a refusing reply from host.
func replyErr(r *reply, host string) *deliveryError {
	e := &deliveryError{perm: r.code >= 500, code: r.code, status: r.status, msg: r.text, mta: host}
	if e.status == "" || e.status[0] != byte('0'+r.code/100) {
		e.status = strconv.Itoa(r.code/100) + ".0.0"
	}
	return e
}

// maxMXHosts and maxAddrs bound the work of one attempt.
const (
	maxMXHosts = 10
	maxAddrs   = 4
)

// envelope is what one delivery to a domain carries.
type envelope struct {
	itemID string
	from   string
	rcpts  []string // all at the domain
	msg    [][]byte
	// requireTLS: the message came with REQUIRETLS (RFC 8689).
	requireTLS bool
}

// deliverDomain delivers env.msg to env.rcpts, all at domain, and
// returns each recipient's outcome (nil: the server took it).
func (s *Submission) deliverDomain(ctx context.Context, domain string, env envelope) []*deliveryError {
	itemID := env.itemID
	all := func(e *deliveryError) []*deliveryError {
		out := make([]*deliveryError, len(env.rcpts))
		for i := range out {
			out[i] = e
		}
		return out
	}
	hosts, secure, derr := s.mxHosts(ctx, domain)
	if derr != nil {
		if derr.status == "4.4.3" && s.sec != nil {
			s.rpt.policyFailure(ctx, domain, rptTLSA, "dnssec-invalid", derr.msg)
		}
		return all(derr)
	}
	dps, derr := s.policiesFor(ctx, domain)
	if derr != nil {
		return all(derr)
	}
	if secure {
		// DANE (RFC 7672) for the hosts of a secure MX RRset: first,
		// it decides before MTA-STS (RFC 8461 §2).
		dd := &daneDomain{r: s.sec, log: s.log, domain: domain, hosts: map[string]bool{},
			tlsrpt: func(ctx context.Context, result string) { s.rpt.policyFailure(ctx, domain, rptTLSA, result, "") }}
		for _, h := range hosts {
			dd.hosts[h] = true
		}
		dps = append([]DomainPolicy{dd}, dps...)
	}
	last := tempErr("4.4.1", "no mail server of "+domain+" could be reached")
	// noRequireTLS is why a REQUIRETLS message could not go to the
	// hosts tried; it is the outcome (permanent) when no host failed
	// for another reason.
	var noRequireTLS *deliveryError
	otherFailure := false
	for _, host := range hosts {
		if ctx.Err() != nil {
			return all(tempErr("4.3.2", "delivery interrupted (shutdown)"))
		}
		req, err := requirementFor(ctx, dps, host)
		if err != nil {
			s.log.Info("submission: MX host skipped", "item", itemID, "domain", domain, "mx", host, "err", err)
			last, otherFailure = tempErr("4.7.5", err.Error()), true
			continue
		}
		if env.requireTLS && (req == nil || req.Verify == nil) {
			// RFC 8689 §4.2.1: only to a host whose TLS a DANE or
			// MTA-STS (enforce) policy authenticates.
			s.log.Info("submission: MX host skipped: REQUIRETLS without a validating policy", "item", itemID, "domain", domain, "mx", host)
			noRequireTLS = permErr("5.7.30", "REQUIRETLS: "+host+" is not authenticated by a DANE or MTA-STS policy of "+domain)
			continue
		}
		addrs, derr := s.addrs(ctx, host)
		if derr != nil {
			last, otherFailure = derr, true
			continue
		}
		for _, ip := range addrs {
			res, derr := s.attempt(ctx, domain, host, ip, req, true, env)
			if derr != nil && derr.plainRetry {
				// Opportunistic TLS failed in the handshake: what a
				// server without TLS would get, plaintext, beats not
				// delivering at all (RFC 7435).
				res, derr = s.attempt(ctx, domain, host, ip, req, false, env)
			}
			if res != nil {
				return res
			}
			s.log.Info("submission: attempt failed", "item", itemID, "domain", domain, "mx", host, "ip", ip.String(), "err", derr.Error())
			if derr.status == "5.7.30" {
				noRequireTLS = derr.deliveryError
				break // the next address is the same server
			}
			last, otherFailure = derr.deliveryError, true
		}
	}
	if noRequireTLS != nil && !otherFailure {
		return all(noRequireTLS)
	}
	return all(last)
}

// mxHosts are the hosts to try for domain, most preferred first (RFC
// 5321 §5.1): its MX records by preference, equal preferences in random
// order, or the domain itself when it has no MX records but an address
// (the implicit MX). A null MX (RFC 7505) is a permanent failure. With
// a validating resolver the records come from it, and secure reports
// whether its answer was (then DANE applies to these hosts).
func (s *Submission) mxHosts(ctx context.Context, domain string) (hosts []string, secure bool, derr *deliveryError) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var mxs []*net.MX
	if s.sec != nil {
		res, err := s.sec.lookupMX(lctx, domain)
		if err != nil {
			return nil, false, tempErr("4.4.3", "looking up the MX records of "+domain+": "+err.Error())
		}
		mxs, secure = res.hosts, res.secure
	} else {
		var err error
		mxs, err = s.cfg.Resolver.LookupMX(lctx, domain)
		if err != nil && len(mxs) == 0 && !isNotFound(err) {
			return nil, false, tempErr("4.4.3", "looking up the MX records of "+domain+": "+err.Error())
		}
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, false, permErr("5.1.10", domain+" does not accept mail (null MX)")
	}
	var list []*net.MX
	for _, m := range mxs {
		if h := smtpserver.NormDomain(m.Host); h != "" {
			list = append(list, &net.MX{Host: h, Pref: m.Pref})
		}
	}
	if len(list) == 0 {
		// No MX: the domain's own address records (§5.1).
		_, derr := s.addrs(ctx, domain)
		if derr != nil {
			if derr.perm {
				return nil, false, permErr("5.1.2", domain+" has no mail server (no MX or address records)")
			}
			return nil, false, derr
		}
		return []string{domain}, secure, nil
	}
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	slices.SortStableFunc(list, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	for _, m := range list {
		if !slices.Contains(hosts, m.Host) {
			hosts = append(hosts, m.Host)
		}
	}
	if len(hosts) > maxMXHosts {
		hosts = hosts[:maxMXHosts]
	}
	return hosts, secure, nil
}

// addrs are host's addresses, from the validating resolver when there
// is one; a permanent error when it has none.
func (s *Submission) addrs(ctx context.Context, host string) ([]net.IP, *deliveryError) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ips []net.IP
	if s.sec != nil {
		got, notFound, err := s.sec.lookupIP(lctx, host)
		if err != nil {
			return nil, tempErr("4.4.3", "looking up the address of "+host+": "+err.Error())
		}
		if notFound {
			return nil, permErr("5.4.4", host+" has no address")
		}
		ips = got
	} else {
		ias, err := s.cfg.Resolver.LookupIPAddr(lctx, host)
		if err != nil && len(ias) == 0 {
			if isNotFound(err) {
				return nil, permErr("5.4.4", host+" has no address")
			}
			return nil, tempErr("4.4.3", "looking up the address of "+host+": "+err.Error())
		}
		for _, ia := range ias {
			if ia.IP != nil && !ia.IP.IsUnspecified() {
				ips = append(ips, ia.IP)
			}
		}
	}
	if len(ips) == 0 {
		return nil, permErr("5.4.4", host+" has no address")
	}
	if len(ips) > maxAddrs {
		ips = ips[:maxAddrs]
	}
	return ips, nil
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// attemptError is a failure before any transaction started: the next
// address or MX host may do better.
type attemptError struct {
	*deliveryError
	plainRetry bool // opportunistic TLS failed: try again without it
}

// attempt connects to one address of an MX host and runs the
// transaction. It returns the recipients' outcomes once a transaction
// started (MAIL was sent), else why it could not start one.
func (s *Submission) attempt(ctx context.Context, domain, host string, ip net.IP, req *Requirement, useTLS bool, env envelope) ([]*deliveryError, *attemptError) {
	itemID, from, rcpts, msg := env.itemID, env.from, env.rcpts, env.msg
	fail := func(e *deliveryError) ([]*deliveryError, *attemptError) { return nil, &attemptError{deliveryError: e} }
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(s.cfg.Port))
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(tempErr("4.4.1", "connecting to "+host+": "+err.Error()))
	}
	rs := rptSession{domain: domain, req: req, mx: host, ip: ip.String()}
	if la, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		rs.sendingIP = la.IP.String()
	}
	// Closing the connection is how a shutdown interrupts the attempt.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := newSMTPConn(nc)
	defer func() { c.conn.Close() }()

	r, err := c.readReply(cmdTimeout)
	if err != nil {
		return fail(tempErr("4.4.2", host+": reading the greeting: "+err.Error()))
	}
	if r.code != 220 {
		e := replyErr(r, host)
		e.perm = false // a refusing greeting: another MX may take it
		return fail(e)
	}
	if r, err = c.hello(s.cfg.Hostname, req == nil); err != nil {
		return fail(tempErr("4.4.2", host+": EHLO: "+err.Error()))
	} else if r.code != 250 {
		e := replyErr(r, host)
		e.perm = false
		return fail(e)
	}
	var tlsState *tls.ConnectionState
	switch {
	case useTLS && c.has("STARTTLS"):
		r, err := c.cmd(cmdTimeout, "STARTTLS")
		if err != nil {
			return fail(tempErr("4.4.2", host+": STARTTLS: "+err.Error()))
		}
		if r.code != 220 {
			s.rpt.failure(ctx, rs, "starttls-not-supported", "", "STARTTLS refused: "+r.String())
			if req != nil {
				return fail(tempErr("4.7.10", fmt.Sprintf("%s refused STARTTLS (%s), which the %s policy of %s requires", host, r, req.Policy, domain)))
			}
			break // opportunistic: go on in plaintext, as before STARTTLS
		}
		tc := tls.Client(c.conn, s.clientTLS(host, req))
		hctx, cancel := context.WithTimeout(ctx, cmdTimeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			result, code := tlsResult(req, err)
			s.rpt.failure(ctx, rs, result, code, err.Error())
			if req != nil {
				return fail(tempErr("4.7.5", fmt.Sprintf("%s: TLS as the %s policy of %s requires it failed: %v", host, req.Policy, domain, err)))
			}
			return nil, &attemptError{deliveryError: tempErr("4.7.5", host+": TLS handshake: "+err.Error()), plainRetry: true}
		}
		c.setConn(tc)
		st := tc.ConnectionState()
		tlsState = &st
		s.rpt.success(rs)
		if r, err := c.hello(s.cfg.Hostname, false); err != nil {
			return fail(tempErr("4.4.2", host+": EHLO after STARTTLS: "+err.Error()))
		} else if r.code != 250 {
			e := replyErr(r, host)
			e.perm = false
			return fail(e)
		}
	case req != nil:
		// Without STARTTLS, or asked not to try it: never plaintext
		// where a policy requires TLS.
		s.rpt.failure(ctx, rs, "starttls-not-supported", "", "")
		c.quit()
		return fail(tempErr("4.7.10", fmt.Sprintf("%s does not offer STARTTLS, which the %s policy of %s requires", host, req.Policy, domain)))
	}

	if useTLS && tlsState == nil && req == nil && !c.has("STARTTLS") {
		s.rpt.failure(ctx, rs, "starttls-not-supported", "", "")
	}
	if env.requireTLS && !c.has("REQUIRETLS") {
		// RFC 8689 §4.2.1: the next hop must take the flag on.
		c.quit()
		e := permErr("5.7.30", host+" does not support REQUIRETLS, which the message requires")
		e.mta = host
		return fail(e)
	}

	// The transaction (RFC 5321 §3.3).
	size := 0
	for _, p := range msg {
		size += len(p)
	}
	mail := "MAIL FROM:<" + from + ">"
	if c.has("SIZE") {
		mail += " SIZE=" + strconv.Itoa(size)
	}
	if c.has("8BITMIME") && has8bit(msg) {
		mail += " BODY=8BITMIME"
	}
	if env.requireTLS {
		mail += " REQUIRETLS"
	}
	out := make([]*deliveryError, len(rcpts))
	every := func(e *deliveryError) []*deliveryError {
		for i := range out {
			if out[i] == nil {
				out[i] = e
			}
		}
		return out
	}
	broken := func(what string, err error) []*deliveryError {
		return every(tempErr("4.4.2", host+": "+what+": "+err.Error()))
	}
	if r, err = c.cmd(cmdTimeout, "%s", mail); err != nil {
		return broken("MAIL", err), nil
	} else if r.code != 250 {
		c.quit()
		return every(replyErr(r, host)), nil
	}
	accepted := 0
	for i, rc := range rcpts {
		r, err := c.cmd(cmdTimeout, "RCPT TO:<%s>", rc)
		if err != nil {
			return broken("RCPT", err), nil
		}
		if r.code != 250 && r.code != 251 {
			out[i] = replyErr(r, host)
			continue
		}
		accepted++
	}
	if accepted == 0 {
		c.quit()
		return out, nil
	}
	if r, err = c.cmd(cmdTimeout, "DATA"); err != nil {
		return broken("DATA", err), nil
	} else if r.code != 354 {
		c.quit()
		return every(replyErr(r, host)), nil
	}
	if r, err = c.data(msg...); err != nil {
		return broken("end of data", err), nil
	} else if r.code != 250 {
		c.quit()
		return every(replyErr(r, host)), nil
	}
	c.quit()
	tlsVersion, policy := "none", "opportunistic"
	if tlsState != nil {
		tlsVersion = tls.VersionName(tlsState.Version)
	}
	if req != nil {
		policy = req.Policy
	}
	s.log.Info("submission: delivered", "item", itemID, "domain", domain, "mx", host, "ip", ip.String(),
		"accepted", accepted, "of", len(rcpts), "tls", tlsVersion, "policy", policy, "reply", printable(r.String(), 200))
	return out, nil
}

// clientTLS is the TLS configuration towards host. Certificates are
// never checked by the handshake's own rules: with a requirement its
// Verify does, and opportunistic TLS takes any certificate (it protects
// against passive listeners only) and old TLS versions.
func (s *Submission) clientTLS(host string, req *Requirement) *tls.Config {
	cfg := &tls.Config{ServerName: host, InsecureSkipVerify: true}
	if req == nil {
		cfg.MinVersion = tls.VersionTLS10
		return cfg
	}
	cfg.MinVersion = tls.VersionTLS12
	if req.Verify != nil {
		verify := req.Verify
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verify(host, cs) }
	}
	return cfg
}

func has8bit(parts [][]byte) bool {
	for _, p := range parts {
		for _, b := range p {
			if b >= 0x80 {
				return true
			}
		}
	}
	return false
}

// received is the trace field (RFC 5321 §4.4) on a message that leaves.
// It names neither the user's address nor the client's: the user's
// privacy is worth more than the trace.
func (s *Submission) received(id string, created time.Time) string {
	return fmt.Sprintf("Received: by %s (leapd) with ESMTPSA id %s;\r\n\t%s\r\n",
		printable(strings.ReplaceAll(s.cfg.Hostname, " ", ""), 255), id, created.Format(time.RFC1123Z))
}
