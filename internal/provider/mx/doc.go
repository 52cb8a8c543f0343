// Package mx is the provider's mail exchanger: the server other mail
// systems connect to when they deliver mail for the provider's domain
// (docs/design.md, "Mail", In).
//
// # What an MX does
//
// An MX speaks SMTP (RFC 5321) on port 25. A sending server opens a
// connection, introduces itself (EHLO), names the envelope sender (MAIL
// FROM, the bounce address) and one or more recipients (RCPT TO), and
// then transfers the message (DATA). Each step gets a reply code: 2xx
// means done, 4xx means "not now, try again later" (the sender keeps the
// message queued and retries for days), 5xx means "never" (the sender
// returns the message to its author). The reply to DATA is the moment
// responsibility for the message passes from the sender to us, so we
// answer 250 only after the message is durably stored: a crash before
// that makes the sender retry, a crash after it finds the message stored.
// A failure between storing one recipient's copy and another's can make
// the sender retry a message some recipient already has: delivery is
// at least once, never lost.
//
// This MX refuses what it cannot take responsibility for at RCPT time,
// before any message is transferred:
//
//   - a domain other than ours: 550 5.7.1, we are not an open relay;
//   - a login that has no account: 550 5.1.1;
//   - an account whose user has not yet published a usable OpenPGP key
//     (a fresh signup, a key that cannot be parsed or has no valid
//     encryption subkey): 450 4.7.1, so the mail waits at the sender
//     until the key is there instead of being stored readable.
//
// Local parts are matched without regard to case (logins are lowercase)
// and a "+tag" subaddress (alice+lists@) is delivered to the base login.
// postmaster@DOMAIN, like every address, needs an account; the bare
// <postmaster> RFC 5321 §4.5.1 requires an MX to take is refused by
// go-smtp's address parser (501) before it reaches the MX.
//
// LMTP (RFC 2033) is the same conversation for a local hop: a provider
// that keeps an existing MTA such as Postfix in front (for its queues,
// rate limits and spam filters) hands mail to ServeLMTP, usually over a
// unix socket. LMTP answers DATA once per recipient, so one recipient's
// failure does not make the front MTA resend to the others.
//
// # What the MX records about the sender
//
// The MX checks, and records, who vouches for the message:
//
//   - SPF (RFC 7208): is the connecting IP address allowed by the DNS of
//     the envelope sender's domain (or of the HELO name for the null
//     sender <>) to send its mail? Evaluated with at most 10 DNS-querying
//     mechanisms and 2 void lookups (RFC 7208 §4.6.4).
//   - DKIM (RFC 6376): does a signature in the message verify against the
//     public key its signing domain (d=) publishes in DNS? At most 5
//     signatures per message are checked.
//   - DMARC (RFC 7489): does the domain of the From header field, the
//     author the reader sees, publish a policy, and did SPF or DKIM pass
//     for a domain aligned with it? Alignment is relaxed (the
//     organizational domains are equal) or strict (the domains are
//     equal), as the policy says. The organizational domain comes from
//     the public suffix list compiled into golang.org/x/net/publicsuffix
//     (RFC 7489 §3.2), which is only as fresh as that module; a name that
//     is itself a public suffix is its own organizational domain.
//
// The results go into one Authentication-Results header field (RFC 8601)
// at the top of the message, with our Config.Hostname as the authserv-id,
// above a Received trace field (RFC 5321 §4.4). A sender can write its
// own Authentication-Results claiming to be us; RFC 8601 §5 says to
// remove those, and the MX does, so the user's device can trust the
// field that carries our name. The MX never rejects on these results, it
// only records them: a policy that refuses DMARC p=reject failures (RFC
// 7489 §6.6) can come later, on the same results. DNS failures give
// temperror results; they never fail the delivery.
//
// Over LMTP the connecting address is the front MTA's, not the sender's,
// so SPF is not evaluated there (the front MTA's own checks are in its
// Authentication-Results field, which is kept) and DMARC can pass only
// through an aligned DKIM signature.
//
// # What the MX stores
//
// The whole message, header fields included, with the two fields above
// prepended, is encrypted as one binary OpenPGP message (a literal data
// packet, compressed when the key allows, not signed) to the recipient's
// current public key from the provider's key directory (nicknym), one
// separate copy per recipient. Only that ciphertext is handed to
// Provider.Deliver, which commits it to the user's incoming queue and
// wakes the user's devices. The plaintext lives only in memory while the
// transaction lasts and is never logged: logs carry envelope addresses,
// sizes and authentication results, never header fields or content.
//
// # Limits
//
// Messages up to Config.MaxSize (64 MiB) are taken, larger ones refused
// with 552 5.3.4 and nothing stored (a SIZE= over it at MAIL time,
// before any data; the hint never sizes a buffer); Config.MaxRecipients
// per message (100, then 452 4.5.3); Config.MaxConnections at once per
// listener (100, then 421), Config.MaxPerAddress of them per client
// address or IPv6 /64 (10, then 421 4.7.0); when all are taken, the
// oldest connection waiting for its client for 30 seconds or more
// (outside DATA) is closed for the new one. A message in DATA is kept
// in memory for its first MiB and then in a 0600 spool file
// (Config.Spool, DATADIR/spool), and read back whole only within a
// memory budget shared by all sessions (256 MiB; 452 4.3.1 when it has
// no room for 2 minutes or the spool's disk limit is reached). Lines
// may be 1 MiB long: a message with over-long lines (which RFC 5322
// forbids but real senders produce) is still mail we must not lose, but
// go-smtp has one limit for command and message lines and holds a
// command line in memory whole; a longer line ends the connection with
// 500 5.4.0.
// Reads and writes time out after 5 minutes (RFC 5321 §4.5.3.2 suggests
// 5 to 10). STARTTLS (RFC 3207) is offered when Config.TLSConfig is set.
// Inside TLS, REQUIRETLS (RFC 8689) is offered too (requiretls.go).
// The MX offers no AUTH: it takes mail for local users only and relays
// nothing.
//
// While the MX holds a message it is in memory (it has to be: DKIM needs
// the whole body before the results that go on top of it are known, and
// nothing readable may touch the disk), so the memory it can use is
// bounded by MaxConnections × MaxSize times a small factor (the message,
// one ciphertext, buffer growth).
//
// # Stopping
//
// When the context given to ServeSMTP or ServeLMTP ends, the MX stops
// accepting connections and new transactions (421 4.3.2), closes the
// connections that wait for a command, and lets messages already in DATA
// finish and get their reply, for up to 30 seconds; then it closes the
// rest, before storing anything more. It returns only when no delivery
// is running, so the caller may close the store then.
package mx
