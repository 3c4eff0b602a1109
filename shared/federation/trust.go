package federation

import "encoding/json"

// TrustDomain is a SPIFFE trust domain whose SVIDs the gateway accepts, as the operator
// configured it: its bundle inline and/or the URL of its bundle endpoint.
type TrustDomain struct {
	Name string `json:"name"` // e.g. registry-a.example
	// Bundle is the domain's SPIFFE trust bundle (a JWKS document) inline, and/or
	// BundleEndpoint the https URL of its SPIFFE bundle endpoint, which the sync refreshes.
	Bundle         json.RawMessage `json:"bundle,omitempty"`
	BundleEndpoint string          `json:"bundle_endpoint,omitempty"`
}
