package imapproto

// OWNED BY the conn helper.

import (
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// The capabilities this layer implements itself, whatever the Session:
// the commands and extensions conn.go and the parser handle. The server
// above adds its own with Options.Caps.
var (
	// baseCaps are offered in every state.
	baseCaps = []imap.Cap{
		imap.CapIMAP4rev1,
		imap.CapIMAP4rev2,
		imap.CapLiteralPlus, // RFC 7888
		imap.CapID,          // RFC 2971
		imap.CapEnable,      // RFC 5161
		imap.CapIdle,        // RFC 2177
	}
	// sessionCaps are offered once authenticated.
	sessionCaps = []imap.Cap{
		imap.CapMultiAppend,  // RFC 3502
		imap.CapCondStore,    // RFC 7162
		imap.CapQResync,      // RFC 7162
		imap.CapUTF8Accept,   // RFC 6855
		imap.CapUnselect,     // RFC 3691
		imap.CapUIDPlus,      // RFC 4315
		imap.CapESearch,      // RFC 4731
		imap.CapSearchRes,    // RFC 5182
		imap.CapNamespace,    // RFC 2342
		imap.CapMove,         // RFC 6851
		imap.CapChildren,     // RFC 3348
		imap.CapListExtended, // RFC 5258
		imap.CapListStatus,   // RFC 5819
		imap.CapSpecialUse,   // RFC 6154
		imap.CapBinary,       // RFC 3516
		imap.CapStatusSize,   // RFC 8438
		imap.CapUnauthenticate,
	}
)

// enableable are what ENABLE turns on (RFC 5161); anything else it is
// given is ignored, as the RFC says.
var enableable = map[imap.Cap]bool{
	imap.CapCondStore:  true,
	imap.CapQResync:    true,
	imap.CapUTF8Accept: true,
	imap.CapIMAP4rev2:  true,
}

// caps are the capabilities to advertise now: before authentication the
// base ones and how to authenticate (AUTH=PLAIN and SASL-IR, or
// LOGINDISABLED without TLS unless InsecureAuth; STARTTLS while it can be
// used), after it everything, Options.Caps and APPENDLIMIT=n included.
func (c *Conn) caps() []imap.Cap {
	caps := make([]imap.Cap, 0, 40)
	caps = append(caps, baseCaps...)
	if c.state == stateNotAuth {
		if c.canStartTLS() {
			caps = append(caps, imap.CapStartTLS)
		}
		if c.canAuth() {
			caps = append(caps, imap.CapSASLIR, imap.AuthCap("PLAIN"))
		} else {
			caps = append(caps, imap.CapLoginDisabled)
		}
		return caps
	}
	caps = append(caps, imap.CapSASLIR)
	caps = append(caps, sessionCaps...)
	if l := c.srv.opts.AppendLimit; l > 0 {
		caps = append(caps, imap.Cap("APPENDLIMIT="+strconv.FormatUint(uint64(l), 10)))
	}
	caps = append(caps, c.srv.extraCaps...)
	return caps
}

// extraCaps are Options.Caps that the layer does not offer itself, in a
// stable order.
func extraCaps(set imap.CapSet) []imap.Cap {
	have := map[imap.Cap]bool{imap.CapStartTLS: true, imap.CapLoginDisabled: true, imap.CapSASLIR: true}
	for _, c := range baseCaps {
		have[c] = true
	}
	for _, c := range sessionCaps {
		have[c] = true
	}
	var out []imap.Cap
	for c := range set {
		// AUTH= only before login, APPENDLIMIT from Options.AppendLimit.
		if !have[c] && !strings.HasPrefix(string(c), "AUTH=") && !strings.HasPrefix(string(c), "APPENDLIMIT") {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
