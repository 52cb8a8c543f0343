package mx

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// Local delivery is mail that reaches a user of the provider without
// crossing the MX's listeners: a message another user submitted to the
// provider's submission service, and the delivery status notifications
// the provider writes itself. It takes the same path as mail the MX
// receives: the recipient must have an account and a usable key, our
// Authentication-Results and Received fields go on top (after removing
// Authentication-Results fields that claim our name), and the whole
// message is encrypted to the recipient's key before Provider.Deliver
// stores it. The checks of mail from outside (SPF, DKIM, DMARC) do not
// apply: the Authentication-Results field records instead that the
// sender authenticated to us (RFC 8601 "auth" method), or nothing for
// a message the provider made.

// LocalMessage is a message for local users from inside the provider.
type LocalMessage struct {
	// From is the envelope sender; "" for a message the provider made
	// (a delivery status notification).
	From string
	// Recipients are addresses at the provider's domain.
	Recipients []string
	// Data is the message: header section and body, CRLF line breaks.
	Data []byte
	// AuthUser is the address the sender authenticated as, recorded in
	// the Authentication-Results field as auth=pass smtp.auth=AuthUser;
	// "" for a message the provider made.
	AuthUser string
	// TLS is the submission connection's TLS state, for the Received
	// field; nil when there was none.
	TLS *tls.ConnectionState
	// ID names the message in the Received field and the log; one is
	// made when empty.
	ID string
	// RequireTLS: the message was submitted with REQUIRETLS (RFC
	// 8689); the Received field says so (requiretls.go).
	RequireTLS bool
}

// CheckLocal tells whether the MX can deliver to address now, as it
// does for RCPT: it returns the login that gets the copy, or an
// *smtp.SMTPError to reply with: 550 5.7.1 when address is not at our
// domain, 550 5.1.3 for a malformed one, 550 5.1.1 when the account does
// not exist, 450 4.7.1 when it has no usable key yet, 452 4.2.2 when
// its storage quota is full (quota.go), 451 4.3.0 when the lookup failed.
func (m *MX) CheckLocal(ctx context.Context, address string) (login string, err error) {
	r, err := m.recipient(ctx, address, time.Now())
	if err != nil {
		return "", err
	}
	return r.login, nil
}

// DeliverLocal encrypts msg to the key of each recipient's account and
// delivers one copy per account. Every recipient is checked first, as
// CheckLocal does, and the first that fails fails the whole message
// before anything is stored, and so does a copy that does not fit in its
// account's quota (552 5.2.2). It returns nil when every copy is stored,
// else an *smtp.SMTPError (451 4.3.0 when storing failed; then some
// copies may already be stored, so a retry can duplicate them: delivery
// is at least once).
func (m *MX) DeliverLocal(ctx context.Context, msg LocalMessage) error {
	now := time.Now()
	id := msg.ID
	if id == "" {
		id = smtpserver.NewID()
	}
	var rcpts []*recipient
	seen := map[string]bool{}
	for _, to := range msg.Recipients {
		r, err := m.recipient(ctx, to, now)
		if err != nil {
			m.log.Info("mx: local recipient refused", "id", id, "from", msg.From, "rcpt", to, "err", err)
			return err
		}
		if !seen[r.login] {
			seen[r.login] = true
			rcpts = append(rcpts, r)
		}
	}
	// Every copy must fit in its account's quota before any is stored
	// (quota.go): 552 5.2.2 otherwise, and nothing stored.
	for _, r := range rcpts {
		if err := m.fits(ctx, r.login, int64(len(msg.Data))); err != nil {
			m.log.Info("mx: local recipient refused", "id", id, "from", msg.From, "to", r.login, "err", err)
			return err
		}
	}
	parts, removed := splitMessage(msg.Data).withoutOurResults(m.cfg.Hostname)
	ar := localResults(m.cfg.Hostname, msg.AuthUser)
	var done []string
	for _, r := range rcpts {
		if ctx.Err() != nil {
			return smtpserver.ErrShuttingDown
		}
		received := m.localReceived(id, msg, r.rcpt, now)
		ct, err := encrypt(r.key, now, append([][]byte{[]byte(ar), []byte(received)}, parts...)...)
		if err != nil {
			m.log.Error("mx: encryption failed", "id", id, "to", r.login, "err", err)
			return smtpserver.ErrTempFail
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err = m.p.Deliver(dctx, r.login, ct)
		cancel()
		if err != nil {
			m.log.Error("mx: delivery failed", "id", id, "to", r.login, "delivered", done, "err", err)
			return smtpserver.ErrTempFail
		}
		done = append(done, r.login)
	}
	m.log.Info("mx: local message delivered", "id", id, "from", msg.From, "auth", msg.AuthUser,
		"delivered", done, "size", len(msg.Data), "removed_auth_results", removed)
	return nil
}

// localResults is our Authentication-Results field for local mail.
func localResults(authservID, authUser string) string {
	var results []authres.Result
	if authUser != "" {
		results = append(results, &authres.AuthResult{Value: authres.ResultPass, Auth: clean(authUser)})
	}
	return "Authentication-Results: " + authres.Format(authservID, results) + "\r\n"
}

// localReceived is the trace field of a locally delivered copy. It
// names neither the submitting client's address nor its HELO name.
func (m *MX) localReceived(id string, msg LocalMessage, rcpt string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Received: by %s (leapd) with ", cleanToken(m.cfg.Hostname))
	switch {
	case msg.AuthUser != "" && msg.TLS != nil:
		fmt.Fprintf(&b, "ESMTPSA\r\n\t(authenticated as %s)", cleanToken(msg.AuthUser))
	case msg.AuthUser != "":
		fmt.Fprintf(&b, "ESMTPA\r\n\t(authenticated as %s)", cleanToken(msg.AuthUser))
	default:
		b.WriteString("local\r\n\t(generated by the provider)")
	}
	if st := msg.TLS; st != nil {
		fmt.Fprintf(&b, "\r\n\t(version=%s cipher=%s)", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if msg.RequireTLS {
		b.WriteString(requireTLSComment)
	}
	fmt.Fprintf(&b, "\r\n\tid %s\r\n\tfor <%s>;\r\n\t%s\r\n", cleanToken(id), cleanToken(rcpt), now.Format(time.RFC1123Z))
	return b.String()
}
