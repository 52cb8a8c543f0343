// Package submission is the provider's outgoing mail: the message
// submission service the users' daemons relay through (docs/design.md,
// "Mail", Out), the durable outbound queue, and the relay that delivers
// queued mail to other providers' MX servers (docs/design.md, "Between
// providers").
//
// # Submission (RFC 6409)
//
// Submission is SMTP for a provider's own users: a client proves who it
// is and hands in a message for any destination. It is served with
// STARTTLS (RFC 3207) on port 587 and with implicit TLS (RFC 8314) on
// port 465, under the provider's certificate. AUTH PLAIN (RFC 4616) is
// offered only inside TLS; the username is the login (LOGIN@DOMAIN is
// accepted too) and the password is a session token of the provider API,
// checked like the API's bearer tokens (Provider.CheckToken). A user
// sends as LOGIN@DOMAIN only: MAIL FROM must be that address (553 5.7.1
// otherwise) and so must the message's From field, because the provider
// signs what leaves with its DKIM keys. Messages are at most 64 MiB (552
// 5.3.4), with at most 1000 recipients.
//
// Recipients at the provider's own domain never leave it: they are
// checked at RCPT time as the MX checks them (550 5.1.1 for no such
// user, 450 4.7.1 for a user without a usable key yet), and at DATA the
// message is delivered through the MX's own path (Local, *mx.MX): the
// whole message, with an Authentication-Results field saying the sender
// authenticated and a Received field, encrypted to each recipient's key
// and put in the recipient's incoming queue. Remote recipients go into
// the outbound queue. The reply to DATA is 250 only after both are
// durable; a failure in between makes the client retry, so a copy can
// arrive twice but never not at all.
//
// # The outbound queue, and what it can read
//
// Mail for other providers leaves in clear by necessity: the other
// provider's MX must read it (the message itself may be end-to-end
// encrypted by the user's daemon, which this service neither needs nor
// checks). So the queue, unlike the rest of the provider's storage,
// holds readable messages: the message as the user submitted it, with
// its remote recipients and their delivery state (storage.OutboundItem).
// An item stays only until each recipient's server took the message or
// refused it for good and the sender was told; then it is deleted. The
// logs carry addresses, sizes and outcomes, never content.
//
// # Delivery (RFC 5321)
//
// Run works the queue. For each due item and each destination domain of
// its pending recipients it looks up the MX records, most preferred
// first (equal preferences in random order), or uses the domain itself
// when it has none but has an address (the implicit MX, §5.1); a null
// MX (RFC 7505, "0 .") means the domain takes no mail, a permanent
// failure. It connects to port 25, says EHLO with Config.Hostname, uses
// STARTTLS when the server offers it, and sends the message with our
// Received field and two DKIM signatures (RFC 6376, relaxed/relaxed)
// for the provider's domain on top, independent of each other: one with
// ed25519 (RFC 8463) under selector "bitmask", one with RSA-2048
// (rsa-sha256) under selector "bitmask-rsa", because the largest
// receivers still ignore ed25519, and a receiver that checks both needs
// only one to pass (RFC 6376 §4.2). Config.DKIMSelector renames them
// (SELECTOR and SELECTOR-rsa). The keys are made at first start in the
// data directory (dkim.key and dkim-rsa.key, PKCS #8 PEM, mode 0600; an
// RSA key under 2048 bits there is refused); both TXT records to
// publish are logged at start and printed by leapd dns (DKIMRecords).
// Config.DKIMKey instead signs with that one key alone.
//
// A 2xx reply delivers a recipient; a 5xx (at MAIL, RCPT or the end of
// DATA) fails it for good; anything else (no connection, a 4xx, TLS
// required and not possible) is temporary: the item is retried after
// RetryBase (1 minute), doubling each time up to RetryMax (1 hour), and
// given up after GiveUp (5 days). Permanent failures and give-ups are
// reported to the sender with a delivery status notification (RFC
// 3464) delivered into the sender's incoming queue like any local mail.
// The item is updated after each domain and removed only after the
// remote 250: a crash at any point repeats at most the last step.
//
// # TLS policies
//
// How much the TLS of a connection must be trusted is decided per MX
// host by TLSPolicy implementations, asked in order; the first with a
// requirement decides:
//
//   - DANE (RFC 7672), when Config.DNSSECResolverAddr names a validating
//     resolver on loopback. Then every MX, address and TLSA lookup goes
//     to it (dnssec.go), its AD bit counted only from a loopback peer;
//     a secure MX RRset means delivery only to its hosts, and a host with
//     TLSA records at _25._tcp.MXHOST requires STARTTLS and a
//     certificate matching them (DANE-EE 3 x x, DANE-TA 2 x x; at most
//     1,000 records). See dane.go.
//   - MTA-STS (RFC 8461): a policy in mode enforce, fetched over HTTPS
//     and cached for its max_age (on disk, mta-sts.json, so across
//     restarts; fetched again past half its max_age), allows only the MX
//     hosts it lists and requires STARTTLS with a certificate valid for
//     the MX host from a trusted root. See mtasts.go and stscache.go.
//   - Otherwise TLS is opportunistic: used whenever offered, any
//     certificate accepted, plaintext when the server has no STARTTLS
//     or the handshake fails.
//
// Under a requirement the relay never falls back to plaintext: the
// attempt fails (temporarily) and the message waits in the queue.
//
// # REQUIRETLS (RFC 8689)
//
// Submission advertises REQUIRETLS inside TLS and takes MAIL FROM ...
// REQUIRETLS (refused outside TLS: go-smtp v0.25.1 offers the keyword
// only in TLS but would accept the parameter anywhere). The flag stays
// with the queued item (storage.OutboundItem.RequireTLS); a local
// recipient's copy records it in its Received field (internal/provider/mx,
// requiretls.go, says why that is all a local copy needs). The relay
// sends such a message only to an MX host a DANE or MTA-STS (enforce)
// policy authenticates, and only when the host advertises REQUIRETLS,
// passing the parameter on; when no host qualifies it returns the
// message at once with status 5.7.30. Its own SMTP client (smtpclient.go)
// writes the parameter; go-smtp's client would too, but the relay does
// not use it.
//
// # TLS reporting (RFC 8460)
//
// The relay counts each TLS session it tries, per recipient domain and
// policy type, and writes one RFC 8460 report per domain each UTC day
// to DATADIR/tlsrpt/ (tlsrpt.go); sending them is left to the admin. A
// lookup or session that the relay's own shutdown cuts short is not
// counted: it says nothing of the receiving domain.
//
// # Not here
//
// SMTPUTF8 and internationalized addresses, the TLS-Required: No header
// field (RFC 8689 §5), sending TLS reports, DSN parameters (NOTIFY,
// RET) and delay warnings, per-user sending limits, and refusing
// destinations that resolve to private addresses are not implemented.
package submission
