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
