// Package registry speaks the external registries' real contracts (docs/architecture.md,
// "External contracts"): the AgentVault registry v1 list and card API, the AgentVault v2
// federation API, A2A agent cards at /.well-known/agent-card.json, and a static JSON
// document of cards. Each kind is a directory.Source; the directory normalizes the cards
// they return.
package registry

import "github.com/federation-gateway/gateway/shared/directory"

// Compile-time checks that every kind is a directory.Source.
var (
	_ directory.Source = (*agentVault)(nil)
	_ directory.Source = (*agentVaultFederation)(nil)
	_ directory.Source = (*a2aAgents)(nil)
	_ directory.Source = (*staticDocument)(nil)
)
