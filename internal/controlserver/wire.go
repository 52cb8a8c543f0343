package controlserver

import (
	"net"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
)

// The daemon's values as the API's wire types.

func accountStatuses(ss []daemon.AccountStatus) []controlapi.AccountStatus {
	out := make([]controlapi.AccountStatus, 0, len(ss))
	for _, s := range ss {
		out = append(out, wireStatus(s))
	}
	return out
}

func wireStatus(s daemon.AccountStatus) controlapi.AccountStatus {
	return controlapi.AccountStatus{
		Address: s.Address, State: s.State, Online: s.Online, Provider: s.Provider,
		Sync: wireSync(s.Sync), Key: s.Key,
	}
}

func wireSync(s docsync.Status) controlapi.SyncStatus {
	return controlapi.SyncStatus{
		LastSeq: s.LastSeq, Head: s.Head, Pending: s.Pending, LastSync: s.LastSync, LastError: s.LastError,
		Rejected: s.Rejected, Pulled: s.Pulled, Syncing: s.Syncing, Online: s.Online,
	}
}

func wireContactKey(k *contactkeys.Key) controlapi.ContactKey {
	return controlapi.ContactKey{Address: k.Address, Fingerprint: k.Fingerprint, Level: k.Level.String(), Source: k.Source,
		Created: k.Created, Expires: k.Expires, Updated: k.Updated}
}

// mailConfig is the account's mail client settings: the daemon's local
// IMAP and SMTP (default ports 1984 and 2013 when an address has none),
// the address as user name and the local token as password.
func mailConfig(d *daemon.Daemon, a *daemon.Account) controlapi.MailConfig {
	ls := d.LocalServices()
	mc := controlapi.MailConfig{Address: a.Address, Username: a.Address, Password: a.LocalToken(), Security: "STARTTLS", TLSFingerprint: ls.TLSFingerprint}
	if h, p, err := net.SplitHostPort(ls.IMAPAddr); err == nil {
		mc.IMAPHost, mc.IMAPPort = h, atoiOr(p, 1984)
	}
	if h, p, err := net.SplitHostPort(ls.SMTPAddr); err == nil {
		mc.SMTPHost, mc.SMTPPort = h, atoiOr(p, 2013)
	}
	return mc
}

func atoiOr(s string, def int) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return def
	}
	return n
}
