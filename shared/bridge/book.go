package bridge

import (
	"time"

	"github.com/shopspring/decimal"
)

// Book is the gateway's account on one registry's token service, as its own books see
// it. Every figure only grows, except Locked and Reserved, which hold what in-flight
// transfers have claimed or set aside:
//
//	balance   = seeded + deposits − mints − refunds − teg_fees
//	available = balance − reserved
//
// Deposits are every deposit claimed; Locked is the part of them whose transfer is not
// settled or refunded yet. The balance is what the token service should say the gateway
// holds there once every deposit made to it is claimed; reconciliation compares the two.
type Book struct {
	Registry string
	Seeded   decimal.Decimal // put in by operators
	Deposits decimal.Decimal // every deposit claimed
	Locked   decimal.Decimal // of which those of transfers not yet settled or refunded
	Fees     decimal.Decimal // the bridge fees among Deposits
	Mints    decimal.Decimal // paid out to receivers on this registry
	Refunds  decimal.Decimal // paid back to senders on this registry
	TEGFees  decimal.Decimal // the token service's own fees on the gateway's transfers
	Reserved decimal.Decimal // held for mints in flight
	// LowLiquidity is Available() < the registry's threshold as of the last write: kept on
	// the item so that its change shows in the table's stream.
	LowLiquidity bool
	UpdatedAt    time.Time
	Version      int64 // 0: never stored
}

// Balance is what the gateway holds on the registry by its books.
func (b Book) Balance() decimal.Decimal {
	return b.Seeded.Add(b.Deposits).Sub(b.Mints).Sub(b.Refunds).Sub(b.TEGFees)
}

// Available is what the gateway can still mint on the registry.
func (b Book) Available() decimal.Decimal { return b.Balance().Sub(b.Reserved) }

// Ledger entry kinds: every movement of value is one append-only entry under its transfer
// (or operator action).
const (
	EntryDeposit = "deposit" // a deposit claimed and locked (source registry)
	EntryMint    = "mint"    // paid to the receiver (target registry)
	EntryRefund  = "refund"  // paid back to the depositor (source registry)
	EntryFee     = "fee"     // the bridge fee kept (source registry)
	EntryTEGFee  = "teg_fee" // a token service fee the gateway paid
	EntrySeed    = "seed"    // liquidity an operator put in
)

// Entry is one ledger entry.
type Entry struct {
	Ref      string // the transfer or operator request it belongs to
	Seq      int    // its position under Ref
	Kind     string
	Registry string
	Amount   decimal.Decimal
	Account  string // the counterparty's account on the registry's token service
	TxID     string // the token service's transaction ID, if any
	At       time.Time
}
