package controlserver

import (
	"fmt"
	"net"
	"strings"
)

// Local services are for this machine only: they listen on loopback
// addresses, and the control API answers only requests whose Host names
// a loopback host (so that a web page elsewhere cannot reach it through a
// DNS-rebinding name).

// ListenLoopback listens on addr and refuses any address that is not
// loopback ("localhost", 127.0.0.0/8 or ::1).
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err // names addr
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("refusing to listen on %s: local services bind to loopback only", addr)
	}
	return net.Listen("tcp", addr) // its errors name the address
}

// isLoopback tells whether host is "localhost" or a loopback IP literal.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// loopbackHostHeader tells whether a request's Host header names a
// loopback host.
func loopbackHostHeader(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	return isLoopback(host)
}
