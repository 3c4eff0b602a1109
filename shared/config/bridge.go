package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/bridge"
)

// Bridge configures the token bridge: the gateway's account on each registry's token
// service, the lanes between registries, and the operators.
type Bridge struct {
	// Registries maps a registry ID (one of the configured registries) to the gateway's
	// account on its token service.
	Registries map[string]BridgeRegistry `json:"registries,omitempty"`
	// Lanes maps "from->to" to the lane's limits; a lane not listed does not exist.
	Lanes map[string]BridgeLane `json:"lanes,omitempty"`
	// Operators are the identities (verified subjects) that may read any transfer and see
	// every event of the event streams.
	Operators []string `json:"operators,omitempty"`
	// DepositWindowHours is how old a deposit may be when it is bridged (default 24).
	DepositWindowHours int `json:"deposit_window_hours,omitempty"`
	// TEGTimeoutMS bounds one request to a token service (default 3000).
	TEGTimeoutMS int `json:"teg_timeout_ms,omitempty"`
}

// BridgeRegistry is the gateway's account on one registry's token service.
type BridgeRegistry struct {
	TEGURL  string `json:"teg_url"` // the token service's base URL (its /api/v1 is below)
	Account string `json:"account"` // the gateway's account ID there
	// CredentialsSecret names the Secrets Manager secret holding the gateway's Bearer
	// token there; default federation-gateway/<stage>/teg/<registry>. Never the value.
	CredentialsSecret string `json:"credentials_secret,omitempty"`
	InitialLiquidity  string `json:"initial_liquidity,omitempty"` // what a seed without amount puts in (default 10000.0)
	LowLiquidity      string `json:"low_liquidity,omitempty"`     // alert threshold (default 1000.0)
}

// BridgeLane is a lane's limits, decimal strings; empty ones take the defaults.
type BridgeLane struct {
	FeeRate         string `json:"fee_rate,omitempty"`          // default 0.001
	Min             string `json:"min,omitempty"`               // default 1.0
	Max             string `json:"max,omitempty"`               // default 10000.0
	Capacity        string `json:"capacity,omitempty"`          // token bucket, default 100000.0
	RefillPerSecond string `json:"refill_per_second,omitempty"` // default 100.0
}

// TEGSecret returns the name of the secret of the gateway's token on a registry.
func (c Config) TEGSecret(registry string) string {
	if r := c.Bridge.Registries[registry]; r.CredentialsSecret != "" {
		return r.CredentialsSecret
	}
	return "federation-gateway/" + c.Stage + "/teg/" + registry
}

// DepositWindow is Bridge.DepositWindowHours as a duration.
func (b Bridge) DepositWindow() time.Duration {
	if b.DepositWindowHours <= 0 {
		return bridge.DefaultDepositWindow
	}
	return time.Duration(b.DepositWindowHours) * time.Hour
}

// TEGTimeout is Bridge.TEGTimeoutMS as a duration, 0 for the default.
func (b Bridge) TEGTimeout() time.Duration { return time.Duration(b.TEGTimeoutMS) * time.Millisecond }

// Limits returns the domain's limits of every lane, the defaults filled in.
func (b Bridge) Limits() (map[bridge.LaneID]bridge.Limits, error) {
	out := map[bridge.LaneID]bridge.Limits{}
	for name, l := range b.Lanes {
		id, err := bridge.ParseLaneID(name)
		if err != nil {
			return nil, err
		}
		lim := bridge.Limits{FeeRate: bridge.DefaultFeeRate, Min: bridge.DefaultMin, Max: bridge.DefaultMax,
			Capacity: bridge.DefaultCapacity, Refill: bridge.DefaultRefill}
		for _, f := range []struct {
			field, value string
			to           *decimal.Decimal
		}{{"fee_rate", l.FeeRate, &lim.FeeRate}, {"min", l.Min, &lim.Min}, {"max", l.Max, &lim.Max},
			{"capacity", l.Capacity, &lim.Capacity}, {"refill_per_second", l.RefillPerSecond, &lim.Refill}} {
			if f.value == "" {
				continue
			}
			d, err := decimalField(f.field, f.value, f.field == "fee_rate")
			if err != nil {
				return nil, err
			}
			*f.to = d
		}
		if msg := lim.Check(); msg != "" {
			return nil, fmt.Errorf("%s", msg)
		}
		out[id] = lim
	}
	return out, nil
}

// Amounts returns a registry's initial liquidity and low-liquidity threshold.
func (r BridgeRegistry) Amounts() (initial, low decimal.Decimal, err error) {
	initial, low = bridge.DefaultInitialLiquidity, bridge.DefaultLowLiquidity
	if r.InitialLiquidity != "" {
		if initial, err = decimalField("initial_liquidity", r.InitialLiquidity, false); err != nil {
			return
		}
	}
	if r.LowLiquidity != "" {
		low, err = decimalField("low_liquidity", r.LowLiquidity, true)
	}
	return
}

func decimalField(field, value string, zeroOK bool) (decimal.Decimal, error) {
	if zeroOK && strings.Trim(value, "0.") == "" && value != "" && !strings.HasPrefix(value, ".") && !strings.HasSuffix(value, ".") {
		return decimal.Zero, nil
	}
	d, err := bridge.ParseAmount(field, value)
	if err != nil {
		return decimal.Zero, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), ": "))
	}
	return d, nil
}

// checkBridge validates the bridge section against the registries.
func checkBridge(doc Document) []string {
	var problems []string
	b := doc.Bridge
	configured := map[string]bool{}
	for _, r := range doc.Registries {
		configured[r.ID] = true
	}
	for _, id := range sortedKeys(b.Registries) {
		r := b.Registries[id]
		where := "bridge.registries." + id
		if !configured[id] {
			problems = append(problems, where+": no such registry in registries")
		}
		if err := checkURL(r.TEGURL, doc.AllowPrivateNetworks); err != nil {
			problems = append(problems, fmt.Sprintf("%s.teg_url: %v", where, err))
		}
		if r.Account == "" || len(r.Account) > 512 {
			problems = append(problems, where+".account: the gateway's account ID on the token service is required (at most 512 characters)")
		}
		if s := r.CredentialsSecret; s != "" && (!strings.HasPrefix(s, "federation-gateway/") || !strings.Contains(s, "/teg/")) {
			problems = append(problems, where+".credentials_secret: the functions may read only federation-gateway/<stage>/teg/* secrets")
		}
		if _, _, err := r.Amounts(); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
		}
	}
	for _, name := range sortedKeys(b.Lanes) {
		id, err := bridge.ParseLaneID(name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("bridge.lanes: %v", err))
			continue
		}
		for _, reg := range []string{id.From, id.To} {
			if _, ok := b.Registries[reg]; !ok {
				problems = append(problems, fmt.Sprintf("bridge.lanes.%s: registry %s has no entry in bridge.registries", name, reg))
			}
		}
		if _, err := (Bridge{Lanes: map[string]BridgeLane{name: b.Lanes[name]}}).Limits(); err != nil {
			problems = append(problems, fmt.Sprintf("bridge.lanes.%s: %v", name, err))
		}
	}
	for i, op := range b.Operators {
		if op == "" || len(op) > 512 || slices.Index(b.Operators, op) != i {
			problems = append(problems, fmt.Sprintf("bridge.operators[%d]: a non-empty identity, listed once", i))
		}
	}
	if b.DepositWindowHours < 0 || b.DepositWindowHours > 24*30 {
		problems = append(problems, "bridge.deposit_window_hours: want 0 (24) to 720")
	}
	if b.TEGTimeoutMS < 0 || b.TEGTimeoutMS > 20000 {
		problems = append(problems, "bridge.teg_timeout_ms: want 0 (3000) to 20000")
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// BridgeOptions returns the bridge's options from the configuration. tokens makes the
// client of a registry's token service with the gateway's credentials; nil leaves them
// out, for a function that moves no money.
func (c Config) BridgeOptions(tokens func(registry string, r BridgeRegistry) (bridge.TokenService, error)) (bridge.Options, error) {
	limits, err := c.Bridge.Limits()
	if err != nil {
		return bridge.Options{}, err
	}
	opts := bridge.Options{Lanes: limits, Operators: c.Bridge.Operators, DepositWindow: c.Bridge.DepositWindow()}
	for _, id := range sortedKeys(c.Bridge.Registries) {
		r := c.Bridge.Registries[id]
		initial, low, err := r.Amounts()
		if err != nil {
			return bridge.Options{}, err
		}
		reg := bridge.Registry{ID: id, Account: r.Account, InitialLiquidity: initial, LowLiquidity: low}
		if tokens != nil {
			if reg.Tokens, err = tokens(id, r); err != nil {
				return bridge.Options{}, fmt.Errorf("token service of %s: %w", id, err)
			}
		}
		opts.Registries = append(opts.Registries, reg)
	}
	return opts, nil
}
