package defender

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// certificate is an app credential: a certificate registered with the Entra app and its RSA key.
type certificate struct {
	Leaf *x509.Certificate
	key  *rsa.PrivateKey
}

// parseCertificate reads a PEM document holding the certificate and its private key (PKCS#8
// or PKCS#1, not encrypted), in any order. Entra ID signs client assertions with RSA only.
func parseCertificate(pemBytes []byte) (*certificate, error) {
	var certs []*x509.Certificate
	var key crypto.PrivateKey
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the certificate in the PEM cannot be read: %w", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the private key in the PEM cannot be read: %w", err)
			}
			key = k
		case "RSA PRIVATE KEY":
			if _, ok := block.Headers["DEK-Info"]; ok {
				return nil, errors.New("the private key is encrypted; export it without a password (and keep the file mode 0600)")
			}
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the RSA private key in the PEM cannot be read: %w", err)
			}
			key = k
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; export it without a password (and keep the file mode 0600)")
		case "EC PRIVATE KEY":
			return nil, errors.New("the key is an EC key; Entra ID client assertions need an RSA certificate")
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE block found; the PEM must hold the certificate and its private key")
	}
	if key == nil {
		return nil, errors.New("no PRIVATE KEY block found; the PEM must hold the certificate and its private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the private key is not RSA; Entra ID client assertions need an RSA certificate")
	}
	// The leaf is the certificate whose public key matches the private key.
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&rk.PublicKey) {
			return &certificate{Leaf: c, key: rk}, nil
		}
	}
	return nil, errors.New("the private key does not belong to the certificate in the PEM")
}

// thumbprint is the SHA-1 thumbprint Entra ID shows for the certificate (upper-case hex).
func (c *certificate) thumbprint() string {
	sum := sha1.Sum(c.Leaf.Raw)
	return fmt.Sprintf("%X", sum[:])
}

// check reports an expired or not-yet-valid certificate before Entra ID does.
func (c *certificate) check(now time.Time) error {
	if now.After(c.Leaf.NotAfter) {
		return fmt.Errorf("the certificate (thumbprint %s) expired on %s; create a new one and upload it to the app registration",
			c.thumbprint(), c.Leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(c.Leaf.NotBefore) {
		return fmt.Errorf("the certificate (thumbprint %s) is not valid before %s; check this machine's clock",
			c.thumbprint(), c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// assertion builds the signed JWT client assertion of Entra ID's certificate credentials:
// RS256, x5t and x5t#S256 headers, aud = token endpoint, iss = sub = client id, fresh jti.
func (c *certificate) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	s1 := sha1.Sum(c.Leaf.Raw)
	s256 := sha256.Sum256(c.Leaf.Raw)
	header := map[string]string{
		"alg":      "RS256",
		"typ":      "JWT",
		"x5t":      b64(s1[:]),
		"x5t#S256": b64(s256[:]),
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	claims := map[string]any{
		"aud": tokenURL,
		"iss": clientID,
		"sub": clientID,
		"jti": hex.EncodeToString(jti[:]),
		"nbf": now.Unix(),
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64(h) + "." + b64(p)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return signing + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
