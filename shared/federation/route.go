package federation

import (
	"encoding/json"
	"strings"
	"time"
)

// Credential is what a caller presented to prove who it is: a JWT (a SPIFFE JWT-SVID, or
// a JWT signed by a did:key or did:web identity) or an X.509-SVID chain.
type Credential struct {
	// Type is "jwt" or "x509-svid"; empty means jwt.
	Type string `json:"type,omitempty"`
	// Token is the JWT, or the X.509-SVID chain as PEM or base64 DER certificates
	// separated by commas.
	Token string `json:"token"`
}

// Identity is a verified caller.
type Identity struct {
	Method      string    `json:"method"`       // jwt-svid, x509-svid, did:key, did:web
	Subject     string    `json:"subject"`      // the SPIFFE ID or DID
	TrustDomain string    `json:"trust_domain"` // SPIFFE trust domain, or the DID method's domain
	ExpiresAt   time.Time `json:"expires_at"`
}

// RouteRequest asks the gateway to deliver a message from one agent to another.
type RouteRequest struct {
	From    string          `json:"from"`
	To      string          `json:"to"`
	Payload json.RawMessage `json:"payload"`
	// MessageID is the sender's ID of the message: a repeat with the same ID is delivered
	// once. IDs are the sender's own; another sender's use of the same ID is another
	// message.
	MessageID string `json:"message_id,omitempty"`
	// SourceRegistry is what the caller asserts its registry is: checked against the
	// directory's, never taken from here.
	SourceRegistry string `json:"source_registry,omitempty"`
	// Parts says Payload is a JSON list of A2A v1.0 parts (text, data, file) that an A2A
	// client sent the gateway, to be forwarded as they are rather than as one data part.
	Parts bool `json:"-"`
}

// RouteResult is the outcome of a delivery.
type RouteResult struct {
	Status         string          `json:"status"` // delivered
	MessageID      string          `json:"message_id"`
	TargetRegistry string          `json:"target_registry"`
	Response       json.RawMessage `json:"response"` // the target's task or message summary
	Fee            string          `json:"fee"`      // decimal
	// Duplicate says the message ID was delivered before: this is that first result.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ParseAuthorization reads a credential from an HTTP Authorization header value:
// "Bearer <jwt>" or "X509-SVID <chain>". Errors: EUNAUTHORIZED.
func ParseAuthorization(h string) (Credential, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	switch {
	case h == "":
		return Credential{}, Errorf(EUNAUTHORIZED, "no credential: send Authorization: Bearer <JWT-SVID or DID-signed JWT>")
	case !ok || token == "":
		return Credential{}, Errorf(EUNAUTHORIZED, "the Authorization header is not \"<scheme> <credential>\"")
	case strings.EqualFold(scheme, "Bearer"):
		return Credential{Type: "jwt", Token: token}, nil
	case strings.EqualFold(scheme, "X509-SVID"):
		return Credential{Type: "x509-svid", Token: token}, nil
	default:
		return Credential{}, Errorf(EUNAUTHORIZED, "authorization scheme %q is not supported; use Bearer or X509-SVID", scheme)
	}
}
