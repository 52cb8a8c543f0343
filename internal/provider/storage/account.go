package storage

// AccountStore is the life of an account beyond its credentials: the
// devices that log in to it and its deletion (issue 13).
type AccountStore interface{}
