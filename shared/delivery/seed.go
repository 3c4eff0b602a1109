package delivery

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// NewSignerFromSeed derives the gateway's Ed25519 signing key from a secret's random value
// (the template's GatewayKeySecret), so the key is as secret as the secret and rotates
// with it.
func NewSignerFromSeed(seed string) (*Signer, error) {
	if len(seed) < 32 {
		return nil, fmt.Errorf("the key seed has %d characters, want at least 32", len(seed))
	}
	sum := sha256.Sum256([]byte("federation-gateway signing key\x00" + seed))
	jwk, err := json.Marshal(jose.JSONWebKey{Key: ed25519.NewKeyFromSeed(sum[:]), Algorithm: string(jose.EdDSA), Use: "sig"})
	if err != nil {
		return nil, err
	}
	return NewSigner(string(jwk))
}

// PrepareSigning does ahead of NewSignerFromSeed the work of the process's first Ed25519
// key derivation that does not depend on the key: building the curve's precomputed tables
// (about 1.3 ms of CPU, once per process). A function starts it while it waits for its key's
// secret, so that the derivation takes microseconds once the secret arrives; a derivation
// that comes first waits for the tables either way.
func PrepareSigning() { ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) }
