package federation

import "time"

// Status is the gateway's health report.
type Status struct {
	Status      string           `json:"status"` // "ok", or "degraded" when a registry is unhealthy
	Version     string           `json:"version"`
	Stage       string           `json:"stage"`
	Registries  []RegistryStatus `json:"registries"`
	TotalAgents int              `json:"total_agents"` // the registries' active agents
	TotalStale  int              `json:"total_stale"`  // and their stale ones
	Pools       []PoolStatus     `json:"pools"`
}

// RegistryStatus is one registry in the Status report.
type RegistryStatus struct {
	ID         string     `json:"id"`
	URL        string     `json:"url"`
	Kind       string     `json:"kind"`
	Healthy    bool       `json:"healthy"`
	LastSync   *time.Time `json:"last_sync"` // null until the first successful sync
	LastError  string     `json:"last_error,omitempty"`
	AgentCount int        `json:"agent_count"` // its active agents: Agents.Active
	// Agents counts its agents by status: active, stale (kept while it fails), gone
	// (kept a while after it stopped listing them).
	Agents AgentCounts `json:"agents"`
	// Skipped and Problems are its last run's warnings (see RegistryState).
	Skipped  int      `json:"skipped,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// PoolStatus is one bridge liquidity pool in the Status report.
type PoolStatus struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Liquidity string `json:"liquidity"` // decimal string
}
