package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Lanes reports every configured lane: its limits and pause switch, its bucket now, the
// liquidity on both sides and the transfers in flight.
func (b *Bridge) Lanes(ctx context.Context) ([]federation.LaneStatus, error) {
	ids := b.LaneIDs()
	stored, err := b.store.Lanes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("lanes: %w", err)
	}
	books, err := b.store.Books(ctx, b.RegistryIDs())
	if err != nil {
		return nil, fmt.Errorf("lanes: %w", err)
	}
	now := b.now()
	out := make([]federation.LaneStatus, 0, len(ids))
	for _, id := range ids {
		var s *Lane
		if l, ok := stored[id]; ok {
			s = &l
		}
		lane, _ := b.lane(id, s)
		st := laneView(lane, now)
		src, dst := books[id.From], books[id.To]
		src.Registry, dst.Registry = id.From, id.To
		st.SourceLiquidity, st.TargetLiquidity = src.Available().String(), dst.Available().String()
		st.LowLiquidity = b.low(dst)
		if st.InFlight, err = b.store.CountInFlight(ctx, id); err != nil {
			return nil, fmt.Errorf("lanes: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// Books reports each registry's books with its last reconciliation.
func (b *Bridge) Books(ctx context.Context) ([]federation.BookStatus, error) {
	ids := b.RegistryIDs()
	books, err := b.store.Books(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("books: %w", err)
	}
	recs, err := b.store.Reconciliations(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("books: %w", err)
	}
	out := make([]federation.BookStatus, 0, len(ids))
	for _, id := range ids {
		bk := books[id]
		bk.Registry = id
		st := federation.BookStatus{Registry: id, Account: b.registries[id].Account, Balance: bk.Balance().String(), Available: bk.Available().String(),
			Reserved: bk.Reserved.String(), Locked: bk.Locked.String(), Fees: bk.Fees.String(), LowLiquidity: b.low(bk)}
		if r, ok := recs[id]; ok {
			at := r.At.UTC()
			st.ReconciledAt, st.ReconcileErr = &at, r.Error
			if r.Error == "" {
				st.TokenBalance, st.Drift, st.Unclaimed = r.Balance.String(), r.Drift.String(), r.Unclaimed.String()
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// Reconcile compares, for every registry, the gateway's balance on the token service with
// its books, and stores the result. What the token service shows and the books do not
// yet (deposits no transfer has claimed, the gateway's own transfers in flight) is
// accounted for from the gateway's transactions of the deposit window; whatever is left
// is drift, which should be zero.
func (b *Bridge) Reconcile(ctx context.Context) ([]Reconciliation, error) {
	var out []Reconciliation
	var errs []error
	for _, id := range b.RegistryIDs() {
		r := b.reconcile(ctx, id)
		if err := b.store.RecordReconciliation(ctx, r); err != nil {
			errs = append(errs, err)
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func (b *Bridge) reconcile(ctx context.Context, registry string) Reconciliation {
	r := Reconciliation{Registry: registry, At: b.now()}
	fail := func(err error) Reconciliation {
		r.Error = err.Error()
		return r
	}
	reg, err := b.tokens(registry)
	if err != nil {
		return fail(err)
	}
	// The books first: what happens after is seen in the balance and the transactions.
	bk, err := b.book(ctx, registry)
	if err != nil {
		return fail(err)
	}
	since := r.At.Add(-b.window)
	var inbound []TokenTx
	ours := map[string][]TokenTx{} // by transfer ID
	const page = 100
	for p := 0; p < b.pages*4; p++ {
		res, err := reg.Tokens.Transactions(ctx, since, page, p*page)
		if err != nil {
			return fail(err)
		}
		for _, tx := range res.Transactions {
			switch {
			case tx.Status != TxCompleted:
			case tx.Receiver == reg.Account && tx.Sender != reg.Account && isTransfer(tx):
				inbound = append(inbound, tx) // a deposit, claimed or not: an issuance to the gateway is drift until seeded
			case tx.Sender == reg.Account:
				if id, _, ok := parseMessage(tx.Message); ok {
					ours[id] = append(ours[id], tx)
				}
			}
		}
		if len(res.Transactions) < page || (p+1)*page >= res.Total {
			break
		}
	}
	balance, err := reg.Tokens.Balance(ctx)
	if err != nil {
		return fail(err)
	}
	r.Balance, r.Books = balance, bk.Balance()

	deposits := make([]Deposit, len(inbound))
	for i, tx := range inbound {
		deposits[i] = Deposit{Registry: registry, TransactionID: tx.ID}
	}
	claimed, err := b.store.Claimed(ctx, deposits)
	if err != nil {
		return fail(err)
	}
	for _, tx := range inbound {
		if _, ok := claimed[Deposit{Registry: registry, TransactionID: tx.ID}]; !ok {
			r.Unclaimed = r.Unclaimed.Add(tx.Amount)
		}
	}
	ids := make([]string, 0, len(ours))
	for id := range ours {
		ids = append(ids, id)
	}
	transfers, err := b.store.Transfers(ctx, ids)
	if err != nil {
		return fail(err)
	}
	for id, txs := range ours {
		t := transfers[id]
		for _, tx := range txs {
			if tx.ID != t.MintTx && tx.ID != t.RefundTx {
				r.Unrecorded = r.Unrecorded.Add(tx.Amount).Add(tx.Fee)
			}
		}
	}
	r.Drift = r.Balance.Sub(r.Books).Sub(r.Unclaimed).Add(r.Unrecorded)
	return r
}

// isTransfer reports whether a transaction is a transfer between accounts (a token
// service that does not say counts as one), not an issuance or a burn.
func isTransfer(tx TokenTx) bool { return tx.Type == "" || tx.Type == "transfer" }

// parseMessage reads Message's form back: the transfer ID and the kind.
func parseMessage(m string) (id, kind string, ok bool) {
	rest, ok := strings.CutPrefix(m, "federation-gateway bridge ")
	if !ok {
		return "", "", false
	}
	id, kind, ok = strings.Cut(rest, " ")
	return id, kind, ok && (kind == StepMint || kind == StepRefund)
}

// Sweep looks at the transfers in flight for longer than age: one whose execution never
// started is started; one whose execution ended without finishing it is parked for an
// operator. It returns how many it started and parked.
func (b *Bridge) Sweep(ctx context.Context, age time.Duration) (started, parked int, err error) {
	now := b.now()
	for _, lane := range b.LaneIDs() {
		ts, err := b.store.InFlight(ctx, lane, 200)
		if err != nil {
			return started, parked, err
		}
		for _, t := range ts {
			if now.Sub(t.UpdatedAt) < age {
				continue
			}
			running, err := b.executions.Running(ctx, t.ExecutionARN)
			switch {
			case federation.ErrorCode(err) == federation.ENOTFOUND:
				b.start(ctx, &t)
				started++
			case err != nil:
				b.log.WarnContext(ctx, "sweep: describe execution", "transfer", t.ID, "error", err.Error())
			case !running:
				if _, err := b.Park(ctx, t.ID, Failure{Error: "BridgeSagaEnded", Cause: "the saga's execution ended with the transfer " + t.Status}); err != nil {
					b.log.WarnContext(ctx, "sweep: park", "transfer", t.ID, "error", err.Error())
					continue
				}
				parked++
			}
		}
	}
	return started, parked, nil
}

// Totals sums amounts; a helper for reports and tests.
func Totals(ds ...decimal.Decimal) decimal.Decimal {
	sum := decimal.Zero
	for _, d := range ds {
		sum = sum.Add(d)
	}
	return sum
}
