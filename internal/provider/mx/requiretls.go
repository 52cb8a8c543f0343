package mx

import (
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// REQUIRETLS (RFC 8689) on the MX. Inside TLS the MX advertises
// REQUIRETLS in its EHLO reply and takes MAIL FROM:<...> REQUIRETLS: the
// sender asks that its message travel only over validated TLS on every
// further hop. Outside TLS the parameter is refused (530 5.7.10):
// go-smtp (v0.25.1) advertises the keyword only inside TLS but would
// accept the parameter anywhere, so the check is ours.
//
// What "keep the flag" means here: the MX delivers only to its own
// users, and the message's only further hop is the recipient's daemon
// fetching its encrypted incoming queue from the provider API, which is
// always HTTPS, validated against the provider's CA (docs/design.md,
// "Between providers"). So the flag needs no further enforcement; it is
// recorded in the Received field of each copy ("(REQUIRETLS)"), inside
// the encryption, where the recipient can see that the sender asked for
// it. The same holds for a message submitted with REQUIRETLS to a local
// recipient (LocalMessage.RequireTLS); one for a remote recipient keeps
// the flag in the outbound queue (storage.OutboundItem.RequireTLS) and
// the relay honours it (internal/provider/submission).

// requireTLSComment is what the Received field says of a REQUIRETLS
// message.
const requireTLSComment = "\r\n\t(REQUIRETLS)"

var errRequireTLSPlain = smtpserver.Reply(530, smtp.EnhancedCode{5, 7, 10}, "REQUIRETLS needs a TLS session")

// checkRequireTLS refuses MAIL FROM ... REQUIRETLS outside TLS.
func (s *session) checkRequireTLS(opts *smtp.MailOptions) error {
	if opts == nil || !opts.RequireTLS {
		return nil
	}
	if _, ok := s.c.TLSConnectionState(); !ok {
		return errRequireTLSPlain
	}
	return nil
}
