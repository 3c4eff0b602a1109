package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Verifier verifies a caller's credential; *identity.Verifier is one.
type Verifier interface {
	// Verify returns the verified identity. Errors: EUNAUTHORIZED (or EINVALID) with the
	// reason.
	Verify(ctx context.Context, cred federation.Credential) (federation.Identity, error)
}

// Executions starts and inspects the saga's state machine executions (Step Functions).
type Executions interface {
	// Start starts an execution named name with input, once: starting one that exists
	// already is not an error. It returns the execution's ARN. Errors: EUNAVAILABLE.
	Start(ctx context.Context, name string, input []byte) (string, error)
	// ARN returns the ARN an execution named name has, started or not.
	ARN(name string) string
	// Running reports whether the execution is still running. Errors: ENOTFOUND when it
	// never started; EUNAVAILABLE.
	Running(ctx context.Context, arn string) (bool, error)
}

// TokenService is one registry's token service (TEG), spoken to with the gateway's own
// credentials there; package teg implements it.
type TokenService interface {
	// Transfer sends an amount from the gateway's account, once per idempotency key.
	// Errors: *TokenError.
	Transfer(ctx context.Context, req TokenTransfer) (TokenTx, error)
	// Transactions lists the gateway account's transactions, newest first, from since
	// on. Errors: *TokenError.
	Transactions(ctx context.Context, since time.Time, limit, offset int) (TokenPage, error)
	// Balance returns the gateway account's balance. Errors: *TokenError.
	Balance(ctx context.Context) (decimal.Decimal, error)
}

// TokenTransfer is a transfer the gateway sends.
type TokenTransfer struct {
	Receiver       string
	Amount         decimal.Decimal
	Message        string
	IdempotencyKey string
}

// TokenTx is a transaction of a token service.
type TokenTx struct {
	ID       string
	Status   string // completed, pending, failed
	Type     string // transfer, issuance, burn
	Sender   string
	Receiver string
	Amount   decimal.Decimal
	Fee      decimal.Decimal // the token service's fee, paid by the sender
	Message  string
	At       time.Time
}

// TokenPage is a page of transactions.
type TokenPage struct {
	Transactions []TokenTx
	Total        int
}

// Token transaction statuses.
const (
	TxCompleted = "completed"
	TxPending   = "pending"
	TxFailed    = "failed"
)

// What a TokenError says of the request that failed.
const (
	// TokenRefused: the token service refused it for good; nothing was applied.
	TokenRefused = "refused"
	// TokenUnavailable: nothing was applied; trying again may work.
	TokenUnavailable = "unavailable"
	// TokenUnknown: the request may or may not have been applied (a timeout, a lost
	// answer, a 5xx after it was sent). A transfer in this state is never compensated
	// before it is resolved.
	TokenUnknown = "unknown"
)

// TokenError is a failed token service request, classified by what it means for money.
type TokenError struct {
	Kind    string // TokenRefused, TokenUnavailable or TokenUnknown
	Status  int    // the HTTP status, 0 when there was no answer
	Code    string // the service's error_code, if it sent one
	Message string
	Err     error
}

// Error describes the failure.
func (e *TokenError) Error() string {
	s := fmt.Sprintf("token service: %s", e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Snapshot is what accepting a request reads, in one read.
type Snapshot struct {
	Agents   map[string]federation.Agent // by DID, those that exist
	Transfer *Transfer                   // the deposit's transfer, if there is one
	Lanes    map[LaneID]Lane             // the lanes' stored states, those that have one
	// KeyTransfer is the transfer an Idempotency-Key already names, "" for none;
	// KeyHash is the request it was used for.
	KeyTransfer, KeyHash string
}

// Acceptance is what accepting a transfer writes, all or nothing: the transfer, its
// Idempotency-Key (if any), and the lane's bucket after taking the amount.
type Acceptance struct {
	Transfer Transfer // Version is the stored one (0: new)
	Lane     Lane     // Version is the stored one (0: new)
	Key      string   // the Idempotency-Key, "" for none
}

// Which write of an Acceptance or Change conflicted.
const (
	ConflictTransfer = "transfer"
	ConflictKey      = "key"
	ConflictLane     = "lane"
	ConflictBook     = "book"
	ConflictDeposit  = "deposit"
	ConflictAudit    = "audit"
)

// Conflict is a conditional write that failed because the item changed or exists.
type Conflict struct{ Which string }

// Error names the item.
func (c *Conflict) Error() string { return "conflict on the " + c.Which }

// Change is one step's writes, all or nothing: the transfer's new state (conditional on
// its stored Version), the books it moves (each conditional on its Version), the ledger
// entries it appends and, for the verify step, the claim of the deposit.
type Change struct {
	Transfer     Transfer
	Books        []Book
	Entries      []Entry
	ClaimDeposit bool
}

// AuditEntry is one operator action, appended to the audit ledger.
type AuditEntry struct {
	RequestID string    `json:"request_id"` // the operator's request ID: an action is applied once
	Operator  string    `json:"operator"`
	Action    string    `json:"action"`
	Target    string    `json:"target"` // lane, registry or transfer
	Detail    string    `json:"detail"` // what changed, as JSON
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// Reconciliation is one comparison of a registry's books with its token service.
type Reconciliation struct {
	Registry string
	Balance  decimal.Decimal // what the token service says
	Books    decimal.Decimal // what the books say
	// Unclaimed are deposits on the token service that no transfer has claimed yet;
	// Unrecorded are the gateway's own transfers the books do not show yet (in flight).
	Unclaimed, Unrecorded decimal.Decimal
	// Drift is what neither explains: Balance − Books − Unclaimed + Unrecorded. Zero
	// when the books are right.
	Drift decimal.Decimal
	At    time.Time
	Error string // why the comparison could not be made, "" when it was
}

// Store is the bridge's storage (package dynamo).
type Store interface {
	// Snapshot reads the agents, the transfer, the lanes and the sender's Idempotency-Key
	// record in one read. transferID and key may be "".
	Snapshot(ctx context.Context, dids []string, transferID string, lanes []LaneID, sender, key string) (Snapshot, error)
	// Accept writes an Acceptance. Errors: ECONFLICT wrapping a *Conflict.
	Accept(ctx context.Context, a Acceptance) error
	// Transfer reads a transfer. Errors: ENOTFOUND.
	Transfer(ctx context.Context, id string) (Transfer, error)
	// Commit writes a Change. Errors: ECONFLICT wrapping a *Conflict.
	Commit(ctx context.Context, c Change) error
	// Books reads the books of the registries; a registry never written has none.
	Books(ctx context.Context, registries []string) (map[string]Book, error)
	// Lanes reads the stored state of the lanes; a lane never written has none.
	Lanes(ctx context.Context, ids []LaneID) (map[LaneID]Lane, error)
	// PutLane writes a lane's state, conditional on its Version, with an audit entry when
	// one is given. Errors: ECONFLICT wrapping a *Conflict.
	PutLane(ctx context.Context, l Lane, audit *AuditEntry) error
	// Seed writes a book that an operator funded, its ledger entry and the audit entry.
	// Errors: ECONFLICT wrapping a *Conflict.
	Seed(ctx context.Context, b Book, e Entry, audit AuditEntry) error
	// Audit appends an audit entry. Errors: ECONFLICT wrapping a *Conflict when its
	// request ID was used before.
	Audit(ctx context.Context, a AuditEntry) error
	// AuditLog returns the latest audit entries, newest first.
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
	// LedgerEntries returns a transfer's (or operator request's) ledger entries.
	LedgerEntries(ctx context.Context, ref string) ([]Entry, error)
	// Parked returns the transfers in manual_review, oldest first.
	Parked(ctx context.Context, limit int) ([]Transfer, error)
	// InFlight returns the transfers of a lane that are not final nor parked, oldest
	// first, at most limit.
	InFlight(ctx context.Context, lane LaneID, limit int) ([]Transfer, error)
	// CountInFlight counts them.
	CountInFlight(ctx context.Context, lane LaneID) (int, error)
	// Claimed returns, of the deposits given, those claimed and by which transfer.
	Claimed(ctx context.Context, deposits []Deposit) (map[Deposit]string, error)
	// Transfers reads the transfers that exist of those IDs.
	Transfers(ctx context.Context, ids []string) (map[string]Transfer, error)
	// RecordReconciliation stores the latest reconciliation of a registry.
	RecordReconciliation(ctx context.Context, r Reconciliation) error
	// Reconciliations reads the latest reconciliation of each registry that has one.
	Reconciliations(ctx context.Context, registries []string) (map[string]Reconciliation, error)
}
