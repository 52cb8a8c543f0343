package srp

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"

	_ "crypto/sha1"   // registers crypto.SHA1 (RFC 5054 test vectors)
	_ "crypto/sha256" // registers crypto.SHA256 (DefaultParams)
)

// ErrBadProof is returned by [Server.Verify] when the client's proof M1 is
// wrong (usually: a wrong password) and by [Client.VerifyServer] when the
// server's proof M2 is wrong (the server does not know the verifier).
var ErrBadProof = errors.New("srp: bad proof")

const (
	// minGroupBits is the smallest modulus accepted. It is the size of the
	// smallest RFC 5054 group, which is used only for the test vectors.
	minGroupBits = 1024

	// secretBytes is the size of the random ephemeral exponents a and b:
	// 256 bits, as recommended by RFC 5054 §2.5.3 and §2.5.4.
	secretBytes = 32
)

// Params selects the group and the hash function.
type Params struct {
	Group *Group
	Hash  crypto.Hash // crypto.SHA1 (test vectors) or crypto.SHA256
}

// DefaultParams returns the parameters used by the product: the RFC 5054
// 4096-bit group with SHA-256.
func DefaultParams() Params {
	return Params{Group: RFC5054Group4096(), Hash: crypto.SHA256}
}

// suite holds validated parameters and values derived from them. It is
// private to one Client or Server, which never modify it.
type suite struct {
	n    *big.Int
	g    *big.Int
	nLen int // byte length of N, the length PAD pads to
	hash crypto.Hash
	k    *big.Int
}

// newSuite validates p and copies N and g, so that later changes to
// p.Group do not affect a running exchange.
func newSuite(p Params) (*suite, error) {
	if p.Group == nil || p.Group.N == nil || p.Group.G == nil {
		return nil, errors.New("srp: nil group")
	}
	n := new(big.Int).Set(p.Group.N)
	if n.Sign() <= 0 || n.Bit(0) == 0 || n.BitLen() < minGroupBits {
		return nil, errors.New("srp: invalid group modulus")
	}
	g := new(big.Int).Set(p.Group.G)
	nMinus1 := new(big.Int).Sub(n, big.NewInt(1))
	if g.Cmp(big.NewInt(1)) <= 0 || g.Cmp(nMinus1) >= 0 {
		return nil, errors.New("srp: invalid group generator")
	}
	if p.Hash == 0 || !p.Hash.Available() {
		return nil, errors.New("srp: hash function unavailable")
	}
	s := &suite{n: n, g: g, nLen: (n.BitLen() + 7) / 8, hash: p.Hash}
	// k = H(N | PAD(g)), RFC 5054 §2.5.3 / §2.6.
	s.k = new(big.Int).SetBytes(s.h(n.Bytes(), s.pad(g)))
	return s, nil
}

// h returns H(parts[0] | parts[1] | ...).
func (s *suite) h(parts ...[]byte) []byte {
	d := s.hash.New()
	for _, p := range parts {
		d.Write(p)
	}
	return d.Sum(nil)
}

// pad returns PAD(z): z big-endian, left-padded with zeros to the length of
// N (RFC 5054 §2.6). z must be in [0, N).
func (s *suite) pad(z *big.Int) []byte {
	return z.FillBytes(make([]byte, s.nLen))
}

// parsePublic decodes a public value (A or B) sent by the peer. It must be
// exactly len(N) bytes (it is sent padded), less than N, and not 0 mod N
// (RFC 5054 §2.5.4, RFC 2945 §3). Values >= N are refused rather than
// reduced: A = N, 2N, ... are the classic attack on SRP servers.
func (s *suite) parsePublic(name string, b []byte) (*big.Int, error) {
	if len(b) != s.nLen {
		return nil, errors.New("srp: " + name + " has the wrong length")
	}
	z := new(big.Int).SetBytes(b)
	if z.Cmp(s.n) >= 0 {
		return nil, errors.New("srp: " + name + " is not less than N")
	}
	if z.Sign() == 0 {
		return nil, errors.New("srp: " + name + " is zero mod N")
	}
	return z, nil
}

// computeU returns u = H(PAD(A) | PAD(B)) (RFC 5054 §2.6).
func (s *suite) computeU(a, b *big.Int) *big.Int {
	return new(big.Int).SetBytes(s.h(s.pad(a), s.pad(b)))
}

// sessionKey returns K = H(PAD(S)). RFC 2945 uses SHA_Interleave of the
// unpadded S; hashing PAD(S) is our choice (see the package documentation).
func (s *suite) sessionKey(premaster *big.Int) []byte {
	return s.h(s.pad(premaster))
}

// clientProof returns
// M1 = H(H(N) XOR H(g) | H(I) | s | PAD(A) | PAD(B) | K) (RFC 2945 §3,
// with A and B padded as they are on the wire).
func (s *suite) clientProof(username, salt []byte, a, b *big.Int, key []byte) []byte {
	hn := s.h(s.n.Bytes())
	hg := s.h(s.g.Bytes())
	for i := range hn {
		hn[i] ^= hg[i]
	}
	return s.h(hn, s.h(username), salt, s.pad(a), s.pad(b), key)
}

// serverProof returns M2 = H(PAD(A) | M1 | K) (RFC 2945 §3).
func (s *suite) serverProof(a *big.Int, m1, key []byte) []byte {
	return s.h(s.pad(a), m1, key)
}

// randomSecret returns a random 256-bit exponent, never zero.
func randomSecret() ([]byte, error) {
	for {
		b := make([]byte, secretBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("srp: reading random bytes: %w", err)
		}
		if new(big.Int).SetBytes(b).Sign() != 0 {
			return b, nil
		}
	}
}

// ComputeX returns x = H(s | H(I | ":" | P)) (RFC 5054 §2.4), the private key
// of the RFC 5054 test vectors. The product derives x differently (package
// seal); this function exists for tests and interoperability. It returns nil
// if p.Hash is unavailable.
func (p Params) ComputeX(salt, username, password []byte) []byte {
	if p.Hash == 0 || !p.Hash.Available() {
		return nil
	}
	inner := p.Hash.New()
	inner.Write(username)
	inner.Write([]byte(":"))
	inner.Write(password)
	outer := p.Hash.New()
	outer.Write(salt)
	outer.Write(inner.Sum(nil))
	return outer.Sum(nil)
}

// Verifier returns v = g^x mod N (RFC 5054 §2.4) as big-endian bytes padded
// to the length of N. x is a big-endian integer. It returns nil if p is
// invalid or x is zero (which would give the trivial verifier 1).
func (p Params) Verifier(x []byte) []byte {
	s, err := newSuite(p)
	if err != nil {
		return nil
	}
	xi := new(big.Int).SetBytes(x)
	if xi.Sign() == 0 {
		return nil
	}
	return s.pad(new(big.Int).Exp(s.g, xi, s.n))
}
