package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/shopspring/decimal"
)

// Transfer statuses. A transfer moves forward only:
//
//	pending ─verify─> verified ─reserve─> reserved ─mint─> minted ─settle─> completed
//	   │                 │                    │
//	   │                 └──────(no liquidity, lane paused)──┐
//	   │   (deposit does not match)       (mint refused)     │
//	   ├────────────────────────────────────────────────> refunding ─refund─> refunded
//	   └─(no such deposit)─> rejected
//
// Any status that is not final may become manual_review when a step fails for good (a
// refund the source registry keeps refusing, a mint whose outcome stays unknown); an
// operator resolves it. completed, refunded and rejected are final.
const (
	StatusPending      = "pending"       // accepted; the deposit is not verified yet
	StatusVerified     = "verified"      // the deposit is claimed and locked in the books
	StatusReserved     = "reserved"      // target liquidity is reserved for the mint
	StatusMinted       = "minted"        // the target registry paid the receiver
	StatusCompleted    = "completed"     // settled: deposited = minted + fee
	StatusRefunding    = "refunding"     // the deposit goes back to its sender
	StatusRefunded     = "refunded"      // deposited = refunded
	StatusRejected     = "rejected"      // nothing was taken: no usable deposit
	StatusManualReview = "manual_review" // parked for an operator
)

// Final reports whether a status is the end of a transfer.
func Final(status string) bool {
	return status == StatusCompleted || status == StatusRefunded || status == StatusRejected
}

// Steps of the saga: the state machine's Task states, each a method of Saga.
const (
	StepAccept  = "accept" // POST /api/v1/bridge
	StepVerify  = "verify"
	StepReserve = "reserve"
	StepMint    = "mint"
	StepSettle  = "settle"
	StepRefund  = "refund"
	StepReject  = "reject"
	StepPark    = "park"
	StepResolve = "resolve" // an operator's resolution
)

// Outcomes a step reports to the state machine, whose Choice states route on them.
const (
	OutcomeVerified  = "verified"
	OutcomeReserved  = "reserved"
	OutcomeMinted    = "minted"
	OutcomeCompleted = "completed"
	OutcomeRefund    = "refund" // go to the refund
	OutcomeRefunded  = "refunded"
	OutcomeRejected  = "rejected"
	OutcomeParked    = "parked"
)

// Deposit names the transfer an agent made to the gateway's account on its registry's
// token service.
type Deposit struct {
	Registry      string `json:"registry"`
	TransactionID string `json:"transaction_id"`
}

// TransferID is the ID of the transfer a deposit backs: one deposit, one transfer, so a
// repeated request cannot start a second one.
func TransferID(d Deposit) string {
	sum := sha256.Sum256([]byte(d.Registry + "#" + d.TransactionID))
	return "br-" + hex.EncodeToString(sum[:16])
}

// StepRecord is one run of a step: when, what came of it, and why.
type StepRecord struct {
	Step    string    `json:"step"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
	At      time.Time `json:"at"`
}

// Transfer is one bridge transfer and everything known of it.
type Transfer struct {
	ID      string
	Attempt int // the execution attempt: 1, then one more each time it is restarted
	Status  string
	// Step is the last step that changed the transfer.
	Step string
	// From and To are the agents' DIDs; Lane is their registries' lane, from the directory.
	From, To string
	Lane     LaneID
	// Sender is the verified subject that asked for the transfer.
	Sender string
	// Amount is what the sender said it deposited.
	Amount  decimal.Decimal
	Deposit Deposit
	// SenderAccount and ReceiverAccount are the agents' accounts on their registries'
	// token services.
	SenderAccount, ReceiverAccount string
	// IdempotencyKey is the request's Idempotency-Key header, RequestHash what it asked.
	IdempotencyKey, RequestHash string
	// FeeRate is the lane's fee rate when the transfer was accepted: the rate it pays.
	FeeRate decimal.Decimal

	// What the source registry says of the deposit, once verified.
	Deposited     decimal.Decimal
	DepositSender string
	// Money moved for the transfer.
	Fee, Minted, Refunded decimal.Decimal
	Reserved              decimal.Decimal // target liquidity held for the mint
	MintTx, RefundTx      string          // the token services' transaction IDs
	// MintSentAt and RefundSentAt record that a mint or refund may have been sent: a later
	// attempt first looks for it in the token service's transactions.
	MintSentAt, RefundSentAt time.Time
	// Reason says why a transfer was refunded, rejected or parked.
	Reason string
	// ParkedFrom is the status a transfer in manual_review had before.
	ParkedFrom string

	ExecutionARN string
	Steps        []StepRecord
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64
}

// record appends a step record and marks the transfer changed.
func (t *Transfer) record(step, outcome, detail string, now time.Time) {
	t.Step, t.UpdatedAt = step, now
	t.Steps = append(t.Steps, StepRecord{Step: step, Outcome: outcome, Detail: detail, At: now})
}

// View is a transfer as GET /api/v1/bridge/{id} shows it.
type View struct {
	ID             string       `json:"id"`
	Status         string       `json:"status"`
	Step           string       `json:"step"`
	From           string       `json:"from"`
	To             string       `json:"to"`
	Lane           string       `json:"lane"`
	SourceRegistry string       `json:"source_registry"`
	TargetRegistry string       `json:"target_registry"`
	Amount         string       `json:"amount"`
	FeeRate        string       `json:"fee_rate"`
	Deposit        Deposit      `json:"deposit"`
	Deposited      string       `json:"deposited,omitempty"`
	Fee            string       `json:"fee,omitempty"`
	Minted         string       `json:"minted,omitempty"`
	Refunded       string       `json:"refunded,omitempty"`
	MintTx         string       `json:"mint_transaction_id,omitempty"`
	RefundTx       string       `json:"refund_transaction_id,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	Attempt        int          `json:"attempt"`
	ExecutionARN   string       `json:"execution_arn"`
	Steps          []StepRecord `json:"steps"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

// View returns the transfer as the API shows it.
func (t Transfer) View() View {
	v := View{
		ID: t.ID, Status: t.Status, Step: t.Step, From: t.From, To: t.To, Lane: t.Lane.String(),
		SourceRegistry: t.Lane.From, TargetRegistry: t.Lane.To, Amount: t.Amount.String(), FeeRate: t.FeeRate.String(), Deposit: t.Deposit,
		MintTx: t.MintTx, RefundTx: t.RefundTx, Reason: t.Reason, Attempt: t.Attempt, ExecutionARN: t.ExecutionARN,
		Steps: t.Steps, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	if v.Steps == nil {
		v.Steps = []StepRecord{}
	}
	nonZero := func(d decimal.Decimal, set bool) string {
		if !set {
			return ""
		}
		return d.String()
	}
	verified := t.DepositSender != ""
	v.Deposited = nonZero(t.Deposited, verified)
	v.Fee = nonZero(t.Fee, t.Status == StatusCompleted || t.MintTx != "")
	v.Minted = nonZero(t.Minted, t.MintTx != "")
	v.Refunded = nonZero(t.Refunded, t.RefundTx != "")
	return v
}
