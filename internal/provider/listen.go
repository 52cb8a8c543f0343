package provider

import (
	"fmt"
	"net"
	"os"
)

// Addrs are the addresses of the provider's services: where to listen
// (Config.Listen) or where they listen (Provider.Addrs). "" is off.
type Addrs struct {
	// API is the HTTPS API (host:port).
	API string
	// MX is the MX's SMTP (port 25 in production).
	MX string
	// LMTP is a unix socket path where the MX takes LMTP from a front
	// MTA such as Postfix. Start replaces a socket left by an earlier
	// run and makes it mode 0660: a local client of it can hand in mail
	// for any user.
	LMTP string
	// Submission is submission with STARTTLS (port 587), announced in
	// provider.json.
	Submission string
	// Submissions is submission with implicit TLS (port 465).
	Submissions string
}

// Listeners are listeners a caller opened itself (on a loopback-checked
// or kernel-chosen address, say) for the provider's services.
type Listeners struct {
	API, MX, LMTP, Submission, Submissions net.Listener
}

func (l Listeners) all() []net.Listener {
	return []net.Listener{l.API, l.MX, l.LMTP, l.Submission, l.Submissions}
}

// close closes the listeners that are set.
func (l Listeners) close() {
	for _, ln := range l.all() {
		if ln != nil {
			ln.Close()
		}
	}
}

// addrs is where the listeners listen.
func (l Listeners) addrs() Addrs {
	s := func(ln net.Listener) string {
		if ln == nil {
			return ""
		}
		return ln.Addr().String()
	}
	return Addrs{API: s(l.API), MX: s(l.MX), LMTP: s(l.LMTP), Submission: s(l.Submission), Submissions: s(l.Submissions)}
}

// listenTCP listens on addr into *ln, unless *ln is set already or addr
// is empty.
func listenTCP(ln *net.Listener, addr, name string) error {
	if *ln != nil || addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("provider: %s: %w", name, err)
	}
	*ln = l
	return nil
}

// listenUnix listens on a unix socket at path, replacing a socket left
// by an earlier run (the store's lock, taken first, already keeps a
// second leapd out), and lets only the owner and group connect: a local
// client of the LMTP socket can hand in mail for any user.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// announced is the submission address for provider.json: the listen
// address, with the domain in place of an unspecified host (0.0.0.0).
func announced(listen, domain string) string {
	if listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = domain
	}
	return net.JoinHostPort(host, port)
}
