package providerapi

import (
	"errors"
	"time"
	"unicode"
	"unicode/utf8"
)

// Devices and account deletion (docs/provider-api.md §4.8 and §4.9).

// Device is what a device says of itself when it logs in or signs up:
// an id it made at random and keeps, and a name for people.
type Device struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Limits of a Device.
const (
	MinDeviceIDLen   = 16
	MaxDeviceIDLen   = 64
	MaxDeviceNameLen = 64 // in bytes of UTF-8
)

// Validate checks a device's id (16 to 64 of A-Z, a-z, 0-9, '-', '_')
// and name (1 to 64 bytes of UTF-8, no control characters, not only
// spaces).
func (d *Device) Validate() error {
	if len(d.ID) < MinDeviceIDLen || len(d.ID) > MaxDeviceIDLen {
		return errors.New("device id must be 16 to 64 characters")
	}
	for _, c := range d.ID {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errors.New("device id must be of A-Z, a-z, 0-9, '-' and '_'")
		}
	}
	if d.Name == "" || len(d.Name) > MaxDeviceNameLen || !utf8.ValidString(d.Name) {
		return errors.New("device name must be 1 to 64 bytes of UTF-8")
	}
	blank := true
	for _, c := range d.Name {
		if unicode.IsControl(c) {
			return errors.New("device name must not hold control characters")
		}
		if !unicode.IsSpace(c) {
			blank = false
		}
	}
	if blank {
		return errors.New("device name must not be blank")
	}
	return nil
}

// DeviceInfo is one device in GET /1/devices. A session made without a
// device (an older client) is listed as a device of its own, with an id
// "session-" and 16 hex digits and the name "unnamed device".
type DeviceInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`            // its first login (kept across renewals)
	LastSync time.Time `json:"last_sync,omitzero"` // last pull or push, to the minute
	Sessions int       `json:"sessions"`           // live sessions of the device
	Current  bool      `json:"current,omitempty"`  // the device making the request
	Expires  time.Time `json:"expires"`            // of its latest session
}

// DevicesResponse is GET /1/devices: the user's devices, the oldest first.
type DevicesResponse struct {
	Devices []DeviceInfo `json:"devices"`
}

// RevokeResponse is DELETE /1/devices/{id}: the device whose sessions
// were ended.
type RevokeResponse struct {
	Device DeviceInfo `json:"device"`
}

// DeleteAccountRequest is DELETE /1/users/self: the proof of the
// password, made on a handshake started with POST /1/sessions for the
// same login, exactly as for a login.
type DeleteAccountRequest struct {
	Handshake string `json:"handshake"`
	M1        []byte `json:"M1"`
}

// DeleteAccountResponse answers a deletion with the provider's SRP proof
// M2, so the device knows it spoke with the provider that held the
// verifier.
type DeleteAccountResponse struct {
	M2 []byte `json:"M2"`
}

// Error codes of sessions that were ended on purpose (with HTTP 401), of
// a revocation of the device making it (409), and of a wrong password in
// a deletion (403).
const (
	CodeSessionRevoked = "session_revoked"
	CodeAccountDeleted = "account_deleted"
	CodeCurrentDevice  = "current_device"
	CodeWrongPassword  = "wrong_password"
)
