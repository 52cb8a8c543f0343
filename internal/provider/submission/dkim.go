package submission

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// The DKIM keys' file names in the data directory: the ed25519 key
// (RFC 8463) and the RSA key that receivers which ignore ed25519 check.
const (
	DKIMKeyFile    = "dkim.key"
	DKIMRSAKeyFile = "dkim-rsa.key"
)

// RSASelectorSuffix makes the RSA key's selector from the configured
// one: "bitmask" signs with ed25519, "bitmask-rsa" with RSA.
const RSASelectorSuffix = "-rsa"

// dkimRSABits is the size of the RSA key made at first start; a smaller
// RSA key read from the data directory is refused (RFC 8301 wants 1024
// at least, and large receivers 2048).
const dkimRSABits = 2048

// DKIMKey is one signing key and the selector its public key is
// published under (SELECTOR._domainkey.DOMAIN).
type DKIMKey struct {
	Selector string
	Signer   crypto.Signer
}

// DKIMRecord is a DNS TXT record that publishes a DKIM public key.
type DKIMRecord struct {
	Name  string // SELECTOR._domainkey.DOMAIN, no final dot
	Value string // v=DKIM1; k=...; p=...
}

// LoadOrCreateDKIMKeys reads the provider's two DKIM keys from dir,
// making each that is missing (mode 0600): the ed25519 key in dkim.key
// under selector, the RSA-2048 key in dkim-rsa.key under selector+"-rsa".
// Mail is signed with both, ed25519 first.
func LoadOrCreateDKIMKeys(dir, selector string) ([]DKIMKey, error) {
	if selector == "" {
		selector = DefaultSelector
	}
	ed, err := LoadOrCreateDKIMKey(dir)
	if err != nil {
		return nil, err
	}
	rk, err := loadOrCreateKey(filepath.Join(dir, DKIMRSAKeyFile), func() (crypto.Signer, error) {
		return rsa.GenerateKey(rand.Reader, dkimRSABits)
	})
	if err != nil {
		return nil, err
	}
	if _, ok := rk.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("submission: DKIM key %s: %T is not an RSA key", filepath.Join(dir, DKIMRSAKeyFile), rk)
	}
	return []DKIMKey{{Selector: selector, Signer: ed}, {Selector: selector + RSASelectorSuffix, Signer: rk}}, nil
}

// LoadOrCreateDKIMKey reads the DKIM signing key from dir/dkim.key
// (PKCS #8 PEM), making an ed25519 key (RFC 8463) there, mode 0600, when
// there is none. An RSA key an operator put there is used as it is.
func LoadOrCreateDKIMKey(dir string) (crypto.Signer, error) {
	return loadOrCreateKey(filepath.Join(dir, DKIMKeyFile), func() (crypto.Signer, error) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	})
}

// loadOrCreateKey reads the PKCS #8 PEM key at path, or makes one with
// gen and writes it there (mode 0600, synced) if there is no file.
func loadOrCreateKey(path string, gen func() (crypto.Signer, error)) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := gen()
		if err != nil {
			return nil, err
		}
		if err := writeKey(path, key); err != nil {
			return nil, fmt.Errorf("submission: DKIM key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("submission: DKIM key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("submission: DKIM key %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("submission: DKIM key %s: %w", path, err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < dkimRSABits {
			return nil, fmt.Errorf("submission: DKIM key %s: RSA key of %d bits, %d at least wanted", path, k.N.BitLen(), dkimRSABits)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("submission: DKIM key %s: %T is neither ed25519 nor RSA", path, k)
	}
}

// writeKey writes key to a new file at path (never over an existing
// one: two starts racing keep the first key).
func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Record is the TXT record that publishes k's public key for domain.
func (k DKIMKey) Record(domain string) (DKIMRecord, error) {
	name := k.Selector + "._domainkey." + smtpserver.NormDomain(domain)
	switch pub := k.Signer.Public().(type) {
	case ed25519.PublicKey:
		return DKIMRecord{name, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return DKIMRecord{}, err
		}
		return DKIMRecord{name, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)}, nil
	default:
		return DKIMRecord{}, fmt.Errorf("submission: DKIM key type %T is not supported", pub)
	}
}

// loadDKIM sets the keys outgoing mail is signed with (cfg.DKIMKey
// alone, or the two of the data directory) and logs their records.
func (s *Submission) loadDKIM(cfg Config) error {
	if cfg.DKIMKey != nil {
		s.dkim = []DKIMKey{{Selector: cfg.DKIMSelector, Signer: cfg.DKIMKey}}
	} else {
		if cfg.DataDir == "" {
			return errors.New("submission: a data directory (for the DKIM keys) is required")
		}
		keys, err := LoadOrCreateDKIMKeys(cfg.DataDir, cfg.DKIMSelector)
		if err != nil {
			return err
		}
		s.dkim = keys
	}
	recs, err := s.DKIMRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		s.log.Info("submission: DKIM key; publish this TXT record", "name", r.Name, "value", r.Value)
	}
	return nil
}

// DKIMRecords are the DNS TXT records that publish the DKIM public
// keys, one per key mail is signed with.
func (s *Submission) DKIMRecords() ([]DKIMRecord, error) {
	var recs []DKIMRecord
	for _, k := range s.dkim {
		r, err := k.Record(s.p.Domain())
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// DKIMRecord is the first key's record (the ed25519 one): its name and
// value.
func (s *Submission) DKIMRecord() (name, value string, err error) {
	recs, err := s.DKIMRecords()
	if err != nil {
		return "", "", err
	}
	return recs[0].Name, recs[0].Value, nil
}

// signedFields are the header fields the DKIM signature covers when
// present (RFC 6376 §5.4.1), Autocrypt included so nobody on the way
// swaps the key it carries.
var signedFields = []string{
	"From", "Sender", "Reply-To", "Subject", "Date", "Message-ID",
	"To", "Cc", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
	"Autocrypt", "Openpgp",
}

// fieldsToSign lists each of signedFields as often as msg has it; From
// always (an absent From is signed as absent).
func fieldsToSign(msg []byte) []string {
	count := map[string]int{}
	for _, f := range headerFields(msg) {
		count[strings.ToLower(f.name)]++
	}
	keys := []string{"From"}
	for _, name := range signedFields {
		n := count[strings.ToLower(name)]
		if name == "From" {
			n--
		}
		for range n {
			keys = append(keys, name)
		}
	}
	return keys
}

// dkimSignature is the DKIM-Signature fields (each with its CRLF) for
// msg, one per key: for the provider's domain, relaxed/relaxed. The
// signatures are independent: neither covers the other.
func (s *Submission) dkimSignature(msg []byte) (string, error) {
	return dkimSignatures(msg, s.p.Domain(), s.dkim)
}

// dkimSignatures is one DKIM-Signature field per key for msg, signed
// for domain.
func dkimSignatures(msg []byte, domain string, keys []DKIMKey) (string, error) {
	var sigs strings.Builder
	fields := fieldsToSign(msg)
	for _, k := range keys {
		sig, err := signDKIM(msg, smtpserver.NormDomain(domain), k, fields)
		if err != nil {
			return "", fmt.Errorf("selector %s: %w", k.Selector, err)
		}
		sigs.WriteString(sig)
	}
	return sigs.String(), nil
}

// signDKIM is one DKIM-Signature field for msg.
func signDKIM(msg []byte, domain string, k DKIMKey, headerKeys []string) (string, error) {
	signer, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 domain,
		Selector:               k.Selector,
		Signer:                 k.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             headerKeys,
	})
	if err != nil {
		return "", err
	}
	defer signer.Close()
	if _, err := signer.Write(msg); err != nil {
		return "", err
	}
	if err := signer.Close(); err != nil {
		return "", err
	}
	return signer.Signature(), nil
}
