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

// DKIMKeyFile is the DKIM key's file name in the data directory.
const DKIMKeyFile = "dkim.key"

// LoadOrCreateDKIMKey reads the DKIM signing key from dir/dkim.key
// (PKCS #8 PEM), making an ed25519 key (RFC 8463) there, mode 0600, when
// there is none.
func LoadOrCreateDKIMKey(dir string) (crypto.Signer, error) {
	path := filepath.Join(dir, DKIMKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("submission: DKIM key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			f.Close()
			return nil, fmt.Errorf("submission: DKIM key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("submission: DKIM key: %w", err)
		}
		if err := f.Close(); err != nil {
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
		return k, nil
	default:
		return nil, fmt.Errorf("submission: DKIM key %s: %T is neither ed25519 nor RSA", path, k)
	}
}

// DKIMRecord is the DNS TXT record that publishes the DKIM public key:
// its name (SELECTOR._domainkey.DOMAIN) and value.
func (s *Submission) DKIMRecord() (name, value string, err error) {
	name = s.cfg.DKIMSelector + "._domainkey." + smtpserver.NormDomain(s.p.Domain())
	switch pub := s.dkim.Public().(type) {
	case ed25519.PublicKey:
		return name, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", "", err
		}
		return name, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	default:
		return "", "", fmt.Errorf("submission: DKIM key type %T is not supported", pub)
	}
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

// dkimSignature is the DKIM-Signature field (with its CRLF) for msg:
// for the provider's domain, relaxed/relaxed.
func (s *Submission) dkimSignature(msg []byte) (string, error) {
	signer, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 smtpserver.NormDomain(s.p.Domain()),
		Selector:               s.cfg.DKIMSelector,
		Signer:                 s.dkim,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             fieldsToSign(msg),
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
