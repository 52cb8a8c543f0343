package mx

import (
	"context"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// Quotas at the MX. Each account's storage quota (httpapi.Quota; the
// incoming queue counts against it) is asked through
// Provider.IncomingRoom:
//
//   - at RCPT (and CheckLocal): an account with no room left gets
//     452 4.2.2 "Mailbox full" (RFC 5321 §4.2.2 452 "insufficient system
//     storage"; RFC 3463 X.2.2), temporary since the user can make room,
//     and so does one whose room is smaller than MAIL FROM's SIZE=
//     (RFC 1870 §6.1). The other recipients of the transaction go on.
//   - after DATA: an account the message does not fit in (its size
//     against the room now) gets no copy. When no account got one and
//     only quotas stopped it, the reply is 552 5.2.2 (RFC 5321 552
//     "exceeded storage allocation"); when other accounts got their
//     copies, 452 4.2.2, and the sender's retry skips the copies
//     already stored (partial.go). LMTP answers 552 5.2.2 for that
//     recipient alone.
//   - local delivery (DeliverLocal: the submission service, DSNs):
//     every copy must fit before any is stored, else 552 5.2.2.
//
// The check and the store are separate steps, so messages in flight at
// once for one account can pass its quota by what they carry.
var (
	errFull           = smtpserver.Reply(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full, try again later")
	errTooBigForQuota = smtpserver.Reply(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full: the message does not fit in the recipient's storage quota")
	errFullSome       = smtpserver.Reply(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full for some recipients, try again later")
)

// roomFor is login's room for mail now, or the reply refusing it.
func (m *MX) roomFor(ctx context.Context, login string) (int64, error) {
	room, err := m.p.IncomingRoom(ctx, login)
	if err != nil {
		m.log.Error("mx: quota lookup failed", "login", login, "err", err)
		return 0, errLookup
	}
	if room <= 0 {
		return 0, errFull
	}
	return room, nil
}

// fits returns nil when a message of size bytes fits in login's quota
// now, else the reply refusing it.
func (m *MX) fits(ctx context.Context, login string, size int64) error {
	room, err := m.roomFor(ctx, login)
	if err == errFull || err == nil && size > room {
		return errTooBigForQuota
	}
	return err
}

// smtpReply is SMTP's one reply after DATA for the outcome of each
// recipient: 250 only when every copy is stored; 552 5.2.2 when quotas
// alone stopped every copy; 452 4.2.2 when quotas alone stopped some and
// the others are stored; else 451 4.3.0 (the sender retries; copies
// already stored are skipped then).
func smtpReply(errs []error) error {
	var ok, quota, other int
	for _, e := range errs {
		switch e {
		case nil:
			ok++
		case errTooBigForQuota:
			quota++
		default:
			other++
		}
	}
	switch {
	case quota == 0 && other == 0:
		return nil
	case other > 0:
		return smtpserver.ErrTempFail
	case ok == 0:
		return errTooBigForQuota
	default:
		return errFullSome
	}
}
