module github.com/bitmask-go/bitmask

go 1.26.0

require (
	github.com/ProtonMail/go-crypto v1.5.2
	go.etcd.io/bbolt v1.5.0
	golang.org/x/crypto v0.59.0
	golang.org/x/term v0.48.0
)

require (
	github.com/cloudflare/circl v1.6.3 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
