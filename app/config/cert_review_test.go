package config

import (
	"strings"
	"testing"
)

// the table marks certificate Secret, yet PEM text that does not start
// with "-----BEGIN" (what `openssl pkcs12 -nodes` writes: "Bag Attributes" lines first) is
// taken for a path, and the error that the "path" cannot be read quotes it whole, private key
// included, into splunkd.log or the input page.
func TestCertificatePEMWithHeaderLinesNotInError(t *testing.T) {
	const mark = "MarkPrivateKeyBody"
	p := goodParams()
	delete(p, "client_secret")
	p["certificate"] = "Bag Attributes\n    localKeyID: 01 00 00 00\n-----BEGIN PRIVATE KEY-----\n" + mark + "\n-----END PRIVATE KEY-----"
	_, err := FromParams(p, t.TempDir(), "tenant1")
	if err != nil && strings.Contains(err.Error(), mark) {
		t.Errorf("the error quotes the certificate's private key: %v", err)
	}
}
