// Package bridge is the token bridge: an agent of one registry moves token value to an
// agent of another through the gateway, and no fault at any step, however timed, creates
// or loses value.
//
// The gateway cannot debit an agent. The agent first transfers the amount to the
// gateway's account on its own registry's token service (a deposit), then asks the gateway
// to bridge that deposit. A Step Functions state machine then runs the saga, one step per
// Task state, each step a method of Bridge that is safe to run again:
//
//	verify   the deposit is in the gateway's transactions on the source registry, from
//	         the sender's account, completed; it is claimed once and locked in the books
//	reserve  the target registry's liquidity is set aside (a conditional, versioned write)
//	mint     the gateway pays the receiver on the target registry, with the
//	         Idempotency-Key <transfer>#mint; an unknown outcome is resolved, never guessed
//	settle   the books and the fee ledger are settled: deposited = minted + fee
//	refund   when the mint is refused, the deposit does not match, or liquidity is short:
//	         the deposit goes back to its real sender (<transfer>#refund): deposited = refunded
//	park     a step that keeps failing parks the transfer in manual_review for an operator
//
// Every movement of value is an append-only ledger entry, and every registry has a book
// (Book) that reconciliation compares with the token service's own balance.
//
// Money is shopspring/decimal end to end, stored as decimal strings, at most Scale decimal
// places; fees are rounded up to Scale in the gateway's favour (Fee).
//
// Items the table's stream turns into events (see package dynamo): a transfer's status
// and step, a lane's paused switch, a book's low_liquidity flag.
package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Defaults of a lane and a registry, from the reference: 0.1 % fee, 1.0 to 10000.0 per
// transfer, 10000.0 initial liquidity, an alert under 1000.0.
var (
	DefaultFeeRate          = decimal.RequireFromString("0.001")
	DefaultMin              = decimal.RequireFromString("1.0")
	DefaultMax              = decimal.RequireFromString("10000.0")
	DefaultCapacity         = decimal.RequireFromString("100000.0")
	DefaultRefill           = decimal.RequireFromString("100.0")
	DefaultInitialLiquidity = decimal.RequireFromString("10000.0")
	DefaultLowLiquidity     = decimal.RequireFromString("1000.0")
)

// DefaultDepositWindow is how old a deposit may be when it is bridged: the verify step
// looks through the gateway's transactions of that long.
const DefaultDepositWindow = 24 * time.Hour

// Registry is the gateway's account on one registry's token service.
type Registry struct {
	ID string
	// Account is the gateway's account ID on the token service (a DID, as the token
	// service names accounts).
	Account string
	// Tokens is the token service, spoken to with the gateway's credentials there; nil
	// in a function that does not move money.
	Tokens           TokenService
	InitialLiquidity decimal.Decimal
	LowLiquidity     decimal.Decimal
}

// Options configure a Bridge.
type Options struct {
	Registries []Registry
	Lanes      map[LaneID]Limits
	// Operators are the identities that may read any transfer.
	Operators     []string
	DepositWindow time.Duration
	Log           *slog.Logger
	Now           func() time.Time
	// SearchPages bounds the pages of 100 transactions a search looks through (default 50).
	SearchPages int
}

// Bridge runs transfers. Its dependencies may be nil where a function has no use for
// them: a method that needs a missing one fails with EINTERNAL.
type Bridge struct {
	store      Store
	verifier   Verifier
	executions Executions
	registries map[string]Registry
	lanes      map[LaneID]Limits
	operators  []string
	window     time.Duration
	pages      int
	log        *slog.Logger
	now        func() time.Time
}

// New returns a Bridge.
func New(store Store, verifier Verifier, executions Executions, opts Options) (*Bridge, error) {
	b := &Bridge{store: store, verifier: verifier, executions: executions, registries: map[string]Registry{},
		lanes: map[LaneID]Limits{}, operators: opts.Operators, window: opts.DepositWindow, pages: opts.SearchPages,
		log: opts.Log, now: opts.Now}
	if b.window <= 0 {
		b.window = DefaultDepositWindow
	}
	if b.pages <= 0 {
		b.pages = 50
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	for _, r := range opts.Registries {
		if r.Account == "" {
			return nil, fmt.Errorf("bridge registry %s: no gateway account", r.ID)
		}
		b.registries[r.ID] = r
	}
	for id, l := range opts.Lanes {
		if _, ok := b.registries[id.From]; !ok {
			return nil, fmt.Errorf("bridge lane %s: registry %s has no token service account", id, id.From)
		}
		if _, ok := b.registries[id.To]; !ok {
			return nil, fmt.Errorf("bridge lane %s: registry %s has no token service account", id, id.To)
		}
		if msg := l.Check(); msg != "" {
			return nil, fmt.Errorf("bridge lane %s: %s", id, msg)
		}
		b.lanes[id] = l
	}
	return b, nil
}

// LaneIDs returns the configured lanes in order.
func (b *Bridge) LaneIDs() []LaneID {
	ids := make([]LaneID, 0, len(b.lanes))
	for id := range b.lanes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// RegistryIDs returns the registries with a gateway account, in order.
func (b *Bridge) RegistryIDs() []string {
	ids := make([]string, 0, len(b.registries))
	for id := range b.registries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// lane returns the lane's limits and state: the stored state over the configuration.
func (b *Bridge) lane(id LaneID, stored *Lane) (Lane, bool) {
	limits, ok := b.lanes[id]
	if !ok {
		return Lane{}, false
	}
	l := Lane{ID: id, Limits: limits}
	if stored != nil {
		l.Paused, l.Bucket, l.BucketAt, l.Version, l.Tuned = stored.Paused, stored.Bucket, stored.BucketAt, stored.Version, stored.Tuned
		if stored.Tuned {
			l.Limits = stored.Limits
		}
	}
	return l, true
}

// tokens returns a registry's token service.
func (b *Bridge) tokens(registry string) (Registry, error) {
	r, ok := b.registries[registry]
	if !ok || r.Tokens == nil {
		return r, federation.Errorf(federation.EINTERNAL, "no token service for registry %s", registry)
	}
	return r, nil
}

// book returns a registry's book, an empty one if it was never written.
func (b *Bridge) book(ctx context.Context, registry string) (Book, error) {
	books, err := b.store.Books(ctx, []string{registry})
	if err != nil {
		return Book{}, err
	}
	bk, ok := books[registry]
	if !ok {
		bk = Book{Registry: registry}
	}
	return bk, nil
}

// low reports whether a book's available liquidity is under its registry's threshold.
func (b *Bridge) low(bk Book) bool {
	r := b.registries[bk.Registry]
	return bk.Available().LessThan(r.LowLiquidity)
}

// isOperator reports whether subject is a configured operator.
func (b *Bridge) isOperator(subject string) bool { return slices.Contains(b.operators, subject) }
