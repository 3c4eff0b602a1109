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
	// Bridge is the token bridge: its lanes and each registry's books; nil when the
	// configuration has no bridge.
	Bridge *BridgeStatus `json:"bridge,omitempty"`
}

// BridgeStatus is the token bridge in the Status report.
type BridgeStatus struct {
	Lanes []LaneStatus `json:"lanes"`
	Books []BookStatus `json:"books"`
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

// PoolStatus is one bridge lane's pool in the Status report: the liquidity the gateway can
// still mint on the lane's target registry.
type PoolStatus struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Liquidity string `json:"liquidity"` // decimal string
}

// LaneStatus is one lane in the status report.
type LaneStatus struct {
	Lane   string `json:"lane"`
	From   string `json:"from"`
	To     string `json:"to"`
	Paused bool   `json:"paused"`
	// Liquidity is what the gateway can still mint on each side: its books' balance on
	// that registry less what in-flight transfers reserved.
	SourceLiquidity string `json:"source_liquidity"`
	TargetLiquidity string `json:"target_liquidity"`
	LowLiquidity    bool   `json:"low_liquidity"` // the target's liquidity is under its threshold
	Bucket          string `json:"bucket"`        // value allowed through now
	Capacity        string `json:"capacity"`
	RefillPerSecond string `json:"refill_per_second"`
	FeeRate         string `json:"fee_rate"`
	Min             string `json:"min"`
	Max             string `json:"max"`
	InFlight        int    `json:"in_flight"` // transfers accepted and not yet finished
}

// BookStatus is a registry's books and last reconciliation in the status report.
type BookStatus struct {
	Registry     string     `json:"registry"`
	Account      string     `json:"account"`
	Balance      string     `json:"balance"`   // by the books
	Available    string     `json:"available"` // balance less reservations
	Reserved     string     `json:"reserved"`
	Locked       string     `json:"locked"`
	Fees         string     `json:"fees"`
	LowLiquidity bool       `json:"low_liquidity"`
	TokenBalance string     `json:"token_balance,omitempty"` // what the token service said, last reconciliation
	Drift        string     `json:"drift,omitempty"`         // what the books cannot explain; "0" when right
	Unclaimed    string     `json:"unclaimed,omitempty"`
	ReconciledAt *time.Time `json:"reconciled_at,omitempty"`
	ReconcileErr string     `json:"reconcile_error,omitempty"`
}
