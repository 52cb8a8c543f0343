package storage

// RecoveryStore keeps what lets a user who forgot the password recover
// the account with a recovery code (issue 13).
type RecoveryStore interface{}
