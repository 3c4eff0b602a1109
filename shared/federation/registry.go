package federation

import "time"

// Registry kinds: which external contract a registry speaks (docs/architecture.md,
// "External contracts").
const (
	KindAgentVault           = "agentvault"            // AgentVault registry v1 list + card API
	KindAgentVaultFederation = "agentvault-federation" // AgentVault v2 incremental federation API
	KindA2A                  = "a2a"                   // A2A agents' /.well-known/agent-card.json
	KindStatic               = "static"                // one JSON document of cards at a URL
)

// RegistryKinds lists every kind the gateway can federate.
var RegistryKinds = []string{KindAgentVault, KindAgentVaultFederation, KindA2A, KindStatic}

// Registry is one federated registry as the operator configured it.
type Registry struct {
	ID   string `json:"id"`
	URL  string `json:"url"`
	Kind string `json:"kind"`
	// CredentialsSecret names the Secrets Manager secret holding the registry's API
	// credentials; the secret's value is never part of the configuration.
	CredentialsSecret string `json:"credentials_secret,omitempty"`
	// Agents lists the agent base URLs of an "a2a" registry.
	Agents []string `json:"agents,omitempty"`
	// ClientCertificateSecret names the Secrets Manager secret holding the client
	// certificate (its chain and private key, PEM) the gateway presents to a registry
	// that requires mutual TLS.
	ClientCertificateSecret string `json:"client_certificate_secret,omitempty"`
}

// RegistryState is what the sync last recorded of a registry.
type RegistryState struct {
	ID                  string
	Healthy             bool
	LastSync            time.Time // last successful sync; zero if there was none
	LastError           string
	ConsecutiveFailures int
	// UnhealthySince is the run that found it failing after it was healthy (or at its
	// first run); zero while it is healthy.
	UnhealthySince time.Time
	// Agents counts the registry's own records by status, as its last run left them.
	Agents AgentCounts
	// Skipped and Problems are the last run's warnings: how many entries the registry
	// served that were not usable cards, and, in a few caller-safe lines, what went wrong
	// without failing the run.
	Skipped  int
	Problems []string
}

// AgentCounts counts a registry's agents by status.
type AgentCounts struct {
	Active int `json:"active"`
	Stale  int `json:"stale"`
	Gone   int `json:"gone"`
}
