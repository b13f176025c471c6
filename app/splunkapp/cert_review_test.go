package splunkapp

import "testing"

// PEM text with header lines before "-----BEGIN" (openssl pkcs12 output)
// is not moved to password storage: it stays in inputs.conf in plain text.
func TestCertificatePEMWithHeaderLinesIsSecret(t *testing.T) {
	v := "Bag Attributes\n    localKeyID: 01 00 00 00\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
	if !isSecret("certificate", v) {
		t.Errorf("isSecret(certificate, PEM with Bag Attributes) = false: the private key stays in inputs.conf")
	}
}
