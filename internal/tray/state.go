package tray

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/bitmask-go/bitmask/internal/daemon"
)

// State is what the tray shows of an account, and of all of them
// together (the icon).
type State int

// The states, from the least to the most pressing: the icon shows the
// most pressing state of any account.
const (
	Online  State = iota // logged in, the last sync reached the provider
	Syncing              // a login's first sync, or a sync with changes to pull
	Offline              // the provider could not be reached, or no provider session
	Locked               // an account on this device that is not logged in
	Error                // the provider refused the sync, or refused documents
)

var stateNames = [...]string{Online: "online", Syncing: "syncing", Offline: "offline", Locked: "locked", Error: "error"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Account is one account as the tray shows it.
type Account struct {
	Address string
	State   State
	// Progress is the percentage of a sync, or -1 when not known.
	Progress int
}

// Label is the account's line in the menu and the tooltip.
func (a Account) Label() string {
	switch {
	case a.State == Syncing && a.Progress >= 0:
		return fmt.Sprintf("%s: syncing %d%%", a.Address, a.Progress)
	case a.State == Locked:
		return a.Address + ": locked (log in)"
	case a.State == Offline:
		return a.Address + ": offline"
	case a.State == Error:
		return a.Address + ": error (open for details)"
	}
	return a.Address + ": " + a.State.String()
}

// View is everything the tray shows: the accounts, in order, and
// whether sync is paused.
type View struct {
	Accounts []Account
	Paused   bool
}

// Icon is the state the icon shows: the most pressing state of any
// account (Locked with no account at all, which needs a login or a
// signup too).
func (v View) Icon() State {
	if len(v.Accounts) == 0 {
		return Locked
	}
	s := Online
	for _, a := range v.Accounts {
		s = max(s, a.State)
	}
	return s
}

// maxTooltip keeps the tooltip within what every platform shows
// (Windows keeps 127 characters).
const maxTooltip = 120

// Tooltip is the icon's tooltip: one line per account and the pause.
func (v View) Tooltip() string {
	lines := []string{"Bitmask"}
	if len(v.Accounts) == 0 {
		lines = append(lines, "no account on this device")
	}
	for _, a := range v.Accounts {
		lines = append(lines, a.Label())
	}
	if v.Paused {
		lines = append(lines, "sync paused")
	}
	s := strings.Join(lines, "\n")
	if r := []rune(s); len(r) > maxTooltip {
		s = string(r[:maxTooltip-1]) + "…"
	}
	return s
}

// refused matches the error of a provider that answered and refused
// (providerclient.APIError with a 4xx status): the user has something to
// do (log in again, say), unlike a provider that could not be reached.
var refused = regexp.MustCompile(`\(HTTP 4[0-9][0-9]\)`)

// AccountState is the state of a logged-in account from its status.
func AccountState(s daemon.AccountStatus) Account {
	a := Account{Address: s.Address, Progress: -1}
	if s.Sync.Head > 0 && s.Sync.Head > s.Sync.LastSeq {
		a.Progress = int(s.Sync.LastSeq * 100 / s.Sync.Head)
	}
	switch {
	case s.State == "logging in":
		a.State = Syncing
		if a.Progress < 0 {
			a.Progress = 0
		}
	case s.Sync.Rejected > 0 || refused.MatchString(s.Sync.LastError):
		a.State = Error
	case s.Sync.Syncing && a.Progress >= 0:
		a.State = Syncing // a sync with something to pull
	case !s.Online || !s.Sync.Online:
		a.State = Offline
	default:
		a.State = Online
	}
	if a.State != Syncing {
		a.Progress = -1
	}
	return a
}

// MakeView is what the tray shows of the logged-in accounts (status)
// and those known on the device (known; the others are locked).
func MakeView(status []daemon.AccountStatus, known []string, paused bool) View {
	v := View{Paused: paused}
	seen := map[string]bool{}
	for _, s := range status {
		if seen[s.Address] {
			continue
		}
		seen[s.Address] = true
		v.Accounts = append(v.Accounts, AccountState(s))
	}
	for _, addr := range known {
		if !seen[addr] {
			seen[addr] = true
			v.Accounts = append(v.Accounts, Account{Address: addr, State: Locked, Progress: -1})
		}
	}
	// Logins in their first sync come first in status; the tray keeps
	// the accounts in address order so lines do not jump around.
	slices.SortFunc(v.Accounts, func(a, b Account) int { return strings.Compare(a.Address, b.Address) })
	return v
}
