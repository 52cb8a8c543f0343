package controlapi

import (
	"context"
	"net/http"
)

// The recovery code (docs/control-api.md, "Recovery code"). The code
// made at signup comes back in the signup's answer (CreateResponse).

// CreateResponse answers a signup (POST /v1/users): the account's
// status and its first recovery code, shown once ("" if none could be
// made; `bitmaskctl user recovery-code` makes one).
type CreateResponse struct {
	AccountStatus
	RecoveryCode string `json:"recovery_code,omitempty"`
}

// RecoveryCodeRequest is POST /v1/recovery-code: make a new recovery
// code for a logged-in account (the password confirms it); the earlier
// code stops working.
type RecoveryCodeRequest struct {
	Address  string `json:"address"`
	Password string `json:"password"`
}

// RecoveryCodeResponse carries the new code, shown once and kept
// nowhere.
type RecoveryCodeResponse struct {
	Address      string `json:"address"`
	RecoveryCode string `json:"recovery_code"`
}

// RecoverRequest is POST /v1/recover: set a new password with the
// recovery code and log the account in. It needs no earlier login on
// this device.
type RecoverRequest struct {
	Address      string `json:"address"`
	RecoveryCode string `json:"recovery_code"`
	NewPassword  string `json:"new_password"`
	ProviderRef
}

// NewRecoveryCode makes a new recovery code (POST /v1/recovery-code).
func (c *Client) NewRecoveryCode(ctx context.Context, req RecoveryCodeRequest) (RecoveryCodeResponse, error) {
	return call[RecoveryCodeResponse](ctx, c, http.MethodPost, "/v1/recovery-code", req)
}

// Recover sets a new password with the recovery code and logs in
// (POST /v1/recover).
func (c *Client) Recover(ctx context.Context, req RecoverRequest) (AccountStatus, error) {
	return call[AccountStatus](ctx, c, http.MethodPost, "/v1/recover", req)
}
