package federation

import (
	"encoding/json"
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
	From           string          `json:"from"`
	To             string          `json:"to"`
	Payload        json.RawMessage `json:"payload"`
	MessageID      string          `json:"message_id,omitempty"`
	SourceRegistry string          `json:"source_registry,omitempty"`
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
