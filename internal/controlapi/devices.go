package controlapi

import (
	"context"
	"net/http"
	"time"
)

// Devices and account deletion (docs/control-api.md, "Devices" and
// "Deleting an account").

// DeviceInfo is one device of an account at its provider.
type DeviceInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastSync time.Time `json:"last_sync,omitzero"`
	Sessions int       `json:"sessions"`
	Current  bool      `json:"current,omitempty"` // this device
}

// DevicesResponse is GET /v1/devices.
type DevicesResponse struct {
	Address string       `json:"address"`
	Devices []DeviceInfo `json:"devices"`
}

// RevokeRequest is POST /v1/devices/revoke: Device is a device's id, or
// a name only one device has.
type RevokeRequest struct {
	Address string `json:"address"`
	Device  string `json:"device"`
}

// RevokeResponse says which device was revoked and what the user should
// do next.
type RevokeResponse struct {
	Address string     `json:"address"`
	Device  DeviceInfo `json:"device"`
	Advice  string     `json:"advice"`
}

// DeleteSummary is GET /v1/delete: what deleting the account loses.
type DeleteSummary struct {
	Address   string `json:"address"`
	Mailboxes int    `json:"mailboxes"`
	Messages  int    `json:"messages"`
	Keys      int    `json:"keys"`
	Devices   int    `json:"devices"`
}

// DeleteRequest is POST /v1/delete. Confirm must be the address again.
type DeleteRequest struct {
	Address  string `json:"address"`
	Password string `json:"password"`
	Confirm  string `json:"confirm"`
}

// Devices lists an account's devices; address may be empty when one
// account is logged in.
func (c *Client) Devices(ctx context.Context, address string) (DevicesResponse, error) {
	return call[DevicesResponse](ctx, c, http.MethodGet, "/v1/devices?"+query("address", address), nil)
}

// RevokeDevice ends a device's sessions at the provider.
func (c *Client) RevokeDevice(ctx context.Context, req RevokeRequest) (RevokeResponse, error) {
	return call[RevokeResponse](ctx, c, http.MethodPost, "/v1/devices/revoke", req)
}

// DeletionSummary says what deleting the account would lose.
func (c *Client) DeletionSummary(ctx context.Context, address string) (DeleteSummary, error) {
	return call[DeleteSummary](ctx, c, http.MethodGet, "/v1/delete?"+query("address", address), nil)
}

// DeleteAccount deletes the account at the provider and on this device.
func (c *Client) DeleteAccount(ctx context.Context, req DeleteRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/delete", req, nil)
}
