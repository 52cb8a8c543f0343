package srp

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"math/big"
)

// Client is the client side of one SRP-6a exchange. It is single use and not
// safe for concurrent use.
type Client struct {
	s        *suite
	username []byte
	x        *big.Int
	a        *big.Int // secret ephemeral
	pubA     *big.Int // A = g^a mod N

	responded bool
	premaster []byte // PAD(S), for the tests only
	m1        []byte
	key       []byte // K; nil until Respond succeeds, cleared if M2 is bad
}

// NewClient starts an exchange for username with the secret x (big-endian).
// The ephemeral secret a is 256 random bits from crypto/rand.
func NewClient(p Params, username, x []byte) (*Client, error) {
	for {
		a, err := randomSecret()
		if err != nil {
			return nil, err
		}
		c, err := newClientWithSecret(p, username, x, a)
		if errors.Is(err, errWeakSecret) {
			continue // A mod N == 0: cannot happen for a prime N, but retry
		}
		return c, err
	}
}

// errWeakSecret is returned by newClientWithSecret and newServerWithSecret
// when the given ephemeral secret yields a public value that is 0 mod N.
var errWeakSecret = errors.New("srp: ephemeral secret gives a public value of zero")

// newClientWithSecret is NewClient with a fixed ephemeral secret a, for the
// RFC 5054 test vectors.
func newClientWithSecret(p Params, username, x, a []byte) (*Client, error) {
	s, err := newSuite(p)
	if err != nil {
		return nil, err
	}
	if len(username) == 0 {
		return nil, errors.New("srp: empty username")
	}
	xi := new(big.Int).SetBytes(x)
	if xi.Sign() == 0 {
		return nil, errors.New("srp: x is empty or zero")
	}
	ai := new(big.Int).SetBytes(a)
	if ai.Sign() == 0 {
		return nil, errors.New("srp: ephemeral secret is zero")
	}
	// A = g^a mod N, RFC 5054 §2.5.4.
	pubA := new(big.Int).Exp(s.g, ai, s.n)
	if pubA.Sign() == 0 {
		return nil, errWeakSecret
	}
	return &Client{
		s:        s,
		username: bytes.Clone(username),
		x:        xi,
		a:        ai,
		pubA:     pubA,
	}, nil
}

// A returns the client's public value A, padded to the length of N.
func (c *Client) A() []byte {
	return c.s.pad(c.pubA)
}

// Respond processes the server's salt and public value B and returns the
// client's proof M1. B must be exactly len(N) bytes; B >= N, B mod N == 0 and
// u == 0 are rejected (RFC 5054 §2.5.4). Respond may be called only once.
func (c *Client) Respond(salt, B []byte) (M1 []byte, err error) {
	if c.responded {
		return nil, errors.New("srp: Respond called twice")
	}
	c.responded = true
	if len(salt) == 0 {
		return nil, errors.New("srp: empty salt")
	}
	s := c.s
	pubB, err := s.parsePublic("B", B)
	if err != nil {
		return nil, err
	}
	u := s.computeU(c.pubA, pubB)
	if u.Sign() == 0 {
		return nil, errors.New("srp: u is zero")
	}

	// S = (B - k*g^x)^(a + u*x) mod N, RFC 5054 §2.6.
	kgx := new(big.Int).Exp(s.g, c.x, s.n)
	kgx.Mul(kgx, s.k)
	base := new(big.Int).Sub(pubB, kgx)
	base.Mod(base, s.n) // Euclidean: 0 <= base < N
	exp := new(big.Int).Mul(u, c.x)
	exp.Add(exp, c.a)
	premaster := new(big.Int).Exp(base, exp, s.n)

	key := s.sessionKey(premaster)
	m1 := s.clientProof(c.username, salt, c.pubA, pubB, key)

	c.premaster = s.pad(premaster)
	c.key = key
	c.m1 = m1
	return bytes.Clone(m1), nil
}

// VerifyServer checks the server's proof M2 in constant time. It returns
// ErrBadProof if M2 is wrong, after which Key returns nil.
func (c *Client) VerifyServer(M2 []byte) error {
	if c.key == nil {
		return errors.New("srp: VerifyServer without a successful Respond")
	}
	want := c.s.serverProof(c.pubA, c.m1, c.key)
	if subtle.ConstantTimeCompare(want, M2) != 1 {
		c.key = nil
		return ErrBadProof
	}
	return nil
}

// Key returns the session key K = H(PAD(S)). It is nil before a successful
// Respond and after a failed VerifyServer. Use it only once VerifyServer has
// returned nil: before that, nothing proves that the server knows the
// verifier.
func (c *Client) Key() []byte {
	return bytes.Clone(c.key)
}

// premasterSecret returns PAD(S), the RFC 5054 premaster secret, for the
// test vectors.
func (c *Client) premasterSecret() []byte {
	return bytes.Clone(c.premaster)
}

// StartClient begins an exchange before x is known. A = g^a does not
// depend on x, so a client can send A first and learn from the server's
// answer the salt it needs to compute x (bitmask's login: the Argon2id
// parameters come back with B). Finish with RespondX.
func StartClient(p Params, username []byte) (*Client, error) {
	c, err := NewClient(p, username, []byte{1})
	if err != nil {
		return nil, err
	}
	c.x = nil
	return c, nil
}

// RespondX is Respond for a client made by StartClient: it sets x, then
// processes salt and B.
func (c *Client) RespondX(x, salt, B []byte) (M1 []byte, err error) {
	xi := new(big.Int).SetBytes(x)
	if xi.Sign() == 0 {
		return nil, errors.New("srp: x is empty or zero")
	}
	if c.x != nil {
		return nil, errors.New("srp: x was already given")
	}
	c.x = xi
	return c.Respond(salt, B)
}
