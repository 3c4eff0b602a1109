package registry

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// maxCertificateSecret bounds the secret ParseClientCertificate reads: Secrets Manager
// holds at most 64 KB, and a certificate chain with its key is a few KB.
const maxCertificateSecret = 64 << 10

// parseClientCertificate reads a client certificate as a registry's secret holds it: PEM
// blocks, the certificate first, then any intermediate certificates of its chain, and its
// private key (PKCS #8, PKCS #1 or SEC 1), in any order relative to the certificates. The
// errors say what is wrong without showing any of the secret.
func parseClientCertificate(secret string) (tls.Certificate, error) {
	if len(secret) > maxCertificateSecret {
		return tls.Certificate{}, fmt.Errorf("the client certificate secret is larger than %d KB", maxCertificateSecret>>10)
	}
	var certs, keys []byte
	nCerts, nKeys := 0, 0
	rest := []byte(secret)
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			certs = append(certs, pem.EncodeToMemory(block)...)
			nCerts++
		case block.Type == "PRIVATE KEY" || block.Type == "RSA PRIVATE KEY" || block.Type == "EC PRIVATE KEY":
			keys = append(keys, pem.EncodeToMemory(block)...)
			nKeys++
		default:
			return tls.Certificate{}, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE or a PRIVATE KEY", i, clip(block.Type, 40))
		}
	}
	switch {
	case strings.TrimSpace(string(rest)) != "":
		return tls.Certificate{}, errors.New("the client certificate secret holds text that is not a PEM block")
	case nCerts == 0:
		return tls.Certificate{}, errors.New("the client certificate secret holds no CERTIFICATE block")
	case nKeys != 1:
		return tls.Certificate{}, fmt.Errorf("the client certificate secret holds %d private keys, want 1", nKeys)
	}
	cert, err := tls.X509KeyPair(certs, keys)
	if err != nil {
		// tls's errors name what does not fit (an unparsable certificate, a key that is
		// not the certificate's) and hold none of the secret.
		return tls.Certificate{}, fmt.Errorf("the client certificate secret: %w", err)
	}
	return cert, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
