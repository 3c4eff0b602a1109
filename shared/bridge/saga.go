package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/wait"
)

// Failure is the error a state machine Catch hands to the park step.
type Failure struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Run runs one step of a transfer's saga and returns its outcome, which the state machine
// routes on. Every step is safe to run again: a step that finds its work done answers the
// outcome that leads on from where the transfer is. failure is the caught error, for the
// park step. Errors: *TaskError.
func (b *Bridge) Run(ctx context.Context, step, transferID string, failure *Failure) (string, error) {
	switch step {
	case StepVerify:
		return b.Verify(ctx, transferID)
	case StepReserve:
		return b.Reserve(ctx, transferID)
	case StepMint:
		return b.Mint(ctx, transferID)
	case StepSettle:
		return b.Settle(ctx, transferID)
	case StepRefund:
		return b.Refund(ctx, transferID)
	case StepReject:
		reason := "the deposit was not found among the gateway's transactions"
		if failure != nil && failure.Error != ErrDepositNotFound {
			reason = failure.Error
		}
		return b.Reject(ctx, transferID, reason)
	case StepPark:
		if failure == nil {
			failure = &Failure{Error: "unknown"}
		}
		return b.Park(ctx, transferID, *failure)
	default:
		return "", taskErr(ErrInvalidState, nil, "no step %q", step)
	}
}

// onward is the outcome that leads the state machine on from where a transfer is, for a
// step that finds its own work done.
func onward(t Transfer, done string) (string, error) {
	switch t.Status {
	case StatusRefunding:
		return OutcomeRefund, nil
	case StatusRefunded:
		return OutcomeRefunded, nil
	case StatusRejected:
		return OutcomeRejected, nil
	case StatusManualReview:
		return "", taskErr(ErrInvalidState, nil, "transfer %s is in manual_review", t.ID)
	}
	return done, nil
}

// rank orders the forward statuses, to tell whether a step's work is done.
var rank = map[string]int{StatusPending: 0, StatusVerified: 1, StatusReserved: 2, StatusMinted: 3, StatusCompleted: 4}

// fault turns a storage error into the task error the state machine retries or parks on.
func fault(err error, what string) error {
	var te *TaskError
	if errors.As(err, &te) {
		return err
	}
	if federation.ErrorCode(err) == federation.ENOTFOUND {
		return taskErr(ErrInvalidState, err, "%s", what)
	}
	return taskErr(ErrUnavailable, err, "%s", what)
}

// tokenFault turns a token service error into a task error: unknown is unknown is what
// for a mint or refund, anything else on a read is unavailability.
func tokenFault(err error, unknown string, what string) error {
	var te *TokenError
	if errors.As(err, &te) && te.Kind == TokenUnknown && unknown != "" {
		return taskErr(unknown, err, "%s", what)
	}
	return taskErr(ErrUnavailable, err, "%s", what)
}

// apply reads a transfer, lets build compute the step's change from it, and commits the
// change; when the transfer or a book changed meanwhile, it reads again and retries.
// build returns a nil change when there is nothing to write.
func (b *Bridge) apply(ctx context.Context, id string, build func(t Transfer) (*Change, string, error)) (Transfer, string, error) {
	for attempt := 0; ; attempt++ {
		t, err := b.store.Transfer(ctx, id)
		if err != nil {
			return t, "", fault(err, "read transfer "+id)
		}
		c, outcome, err := build(t)
		if err != nil || c == nil {
			return t, outcome, err
		}
		err = b.store.Commit(ctx, *c)
		if err == nil {
			c.Transfer.Version++
			return c.Transfer, outcome, nil
		}
		var conflict *Conflict
		if !errors.As(err, &conflict) {
			return t, "", fault(err, "write transfer "+id)
		}
		if conflict.Which == ConflictDeposit {
			return t, "", err // claimed by another transfer: reading again changes nothing
		}
		if attempt >= 15 {
			return t, "", taskErr(ErrConflict, err, "transfer %s kept changing", id)
		}
		// Books are shared by every transfer of a registry: back off with jitter.
		if err := wait.Sleep(ctx, time.Duration(2+rand.IntN(10*(attempt+1)))*time.Millisecond); err != nil {
			return t, "", taskErr(ErrUnavailable, err, "interrupted")
		}
	}
}

// books reads the books of registries for a change, empty ones for those never written.
func (b *Bridge) books(ctx context.Context, registries ...string) (map[string]Book, error) {
	bks, err := b.store.Books(ctx, registries)
	if err != nil {
		return nil, fault(err, "read books")
	}
	for _, r := range registries {
		if _, ok := bks[r]; !ok {
			bks[r] = Book{Registry: r}
		}
	}
	return bks, nil
}

// touch marks a book written now and updates its low-liquidity flag.
func (b *Bridge) touch(bk Book, now time.Time) Book {
	bk.UpdatedAt, bk.LowLiquidity = now, b.low(bk)
	return bk
}

func (b *Bridge) entry(t Transfer, seq int, kind, registry string, amount decimal.Decimal, account, tx string, now time.Time) Entry {
	return Entry{Ref: t.ID, Seq: seq, Kind: kind, Registry: registry, Amount: amount, Account: account, TxID: tx, At: now}
}

// Sequence numbers of a transfer's ledger entries: each movement has its own, so a
// replayed step cannot append it twice.
const (
	seqDeposit = 1
	seqMint    = 2
	seqMintFee = 3
	seqFee     = 4
	seqRefund  = 5
	seqRefFee  = 6
)

// Verify finds the deposit among the gateway's transactions on the source registry and
// claims it, once. A completed deposit from the sender's account of the amount asked is
// verified; one that does not match (another sender, another amount) is claimed as it
// is and goes back to its real sender; a failed one, or a transaction that is not a
// deposit to the gateway, rejects the transfer (nothing was taken).
// Errors: ErrDepositNotFound (not there yet), ErrUnavailable, ErrConflict, ErrInvalidState.
func (b *Bridge) Verify(ctx context.Context, id string) (string, error) {
	t, err := b.store.Transfer(ctx, id)
	if err != nil {
		return "", fault(err, "read transfer "+id)
	}
	if t.Status != StatusPending {
		return onward(t, OutcomeVerified)
	}
	src, err := b.tokens(t.Lane.From)
	if err != nil {
		return "", taskErr(ErrInvalidState, err, "lane %s", t.Lane)
	}
	tx, found, err := b.search(ctx, src.Tokens, t.CreatedAt.Add(-b.window), func(tx TokenTx) bool { return tx.ID == t.Deposit.TransactionID })
	if err != nil {
		return "", tokenFault(err, "", "list the gateway's transactions on "+t.Lane.From)
	}
	reject := func(reason string) (string, error) { return b.Reject(ctx, id, reason) }
	switch {
	case !found:
		return "", taskErr(ErrDepositNotFound, nil, "deposit %s is not among the gateway's transactions on %s", t.Deposit.TransactionID, t.Lane.From)
	case tx.Receiver != src.Account || tx.Sender == src.Account || !isTransfer(tx):
		return reject(fmt.Sprintf("transaction %s is not a transfer to the gateway's account %s", tx.ID, src.Account))
	case tx.Status == TxFailed:
		return reject(fmt.Sprintf("deposit %s failed on %s", tx.ID, t.Lane.From))
	case tx.Status != TxCompleted:
		return "", taskErr(ErrDepositNotFound, nil, "deposit %s is %s, not completed", tx.ID, tx.Status)
	case !tx.Amount.IsPositive():
		return reject(fmt.Sprintf("deposit %s has no value", tx.ID))
	}
	match := tx.Sender == t.SenderAccount && tx.Amount.Equal(t.Amount)
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusPending {
			out, err := onward(t, OutcomeVerified)
			return nil, out, err
		}
		bks, err := b.books(ctx, t.Lane.From)
		if err != nil {
			return nil, "", err
		}
		now := b.now()
		src := bks[t.Lane.From]
		src.Deposits = src.Deposits.Add(tx.Amount)
		src.Locked = src.Locked.Add(tx.Amount)
		t.Deposited, t.DepositSender = tx.Amount, tx.Sender
		outcome, detail := OutcomeVerified, fmt.Sprintf("deposit %s of %s from %s", tx.ID, tx.Amount, tx.Sender)
		t.Status = StatusVerified
		if !match {
			t.Status, outcome = StatusRefunding, OutcomeRefund
			t.Reason = fmt.Sprintf("the deposit does not match the request: %s from %s, asked %s from %s; it goes back as it is",
				tx.Amount, tx.Sender, t.Amount, t.SenderAccount)
			detail = t.Reason
		}
		t.record(StepVerify, outcome, detail, now)
		return &Change{
			Transfer:     t,
			Books:        []Book{b.touch(src, now)},
			Entries:      []Entry{b.entry(t, seqDeposit, EntryDeposit, t.Lane.From, tx.Amount, tx.Sender, tx.ID, now)},
			ClaimDeposit: true,
		}, outcome, nil
	})
	var c *Conflict
	if errors.As(err, &c) && c.Which == ConflictDeposit {
		return reject("the deposit is claimed by another transfer")
	}
	return outcome, err
}

// Reject ends a pending transfer without taking anything: its deposit is not claimed.
// Errors: ErrUnavailable, ErrConflict, ErrInvalidState.
func (b *Bridge) Reject(ctx context.Context, id, reason string) (string, error) {
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusPending {
			out, err := onward(t, OutcomeVerified)
			return nil, out, err
		}
		t.Status, t.Reason = StatusRejected, reason
		t.record(StepReject, OutcomeRejected, reason, b.now())
		return &Change{Transfer: t}, OutcomeRejected, nil
	})
	return outcome, err
}

// Reserve sets the mint's amount aside in the target registry's liquidity. With too
// little liquidity, or a lane paused since the transfer was accepted, the deposit goes
// back instead. Errors: ErrUnavailable, ErrConflict, ErrInvalidState.
func (b *Bridge) Reserve(ctx context.Context, id string) (string, error) {
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusVerified {
			if _, forward := rank[t.Status]; forward && rank[t.Status] < rank[StatusVerified] {
				return nil, "", taskErr(ErrInvalidState, nil, "transfer %s is %s, not verified", t.ID, t.Status)
			}
			out, err := onward(t, OutcomeReserved)
			return nil, out, err
		}
		lanes, err := b.store.Lanes(ctx, []LaneID{t.Lane})
		if err != nil {
			return nil, "", fault(err, "read lane")
		}
		var stored *Lane
		if l, ok := lanes[t.Lane]; ok {
			stored = &l
		}
		lane, ok := b.lane(t.Lane, stored)
		bks, err := b.books(ctx, t.Lane.To)
		if err != nil {
			return nil, "", err
		}
		now := b.now()
		fee, minted := Split(t.Deposited, t.FeeRate)
		dst := bks[t.Lane.To]
		switch {
		case !ok || lane.Paused:
			t.Status, t.Reason = StatusRefunding, fmt.Sprintf("bridge lane %s was paused", t.Lane)
		case dst.Available().LessThan(minted):
			t.Status, t.Reason = StatusRefunding, fmt.Sprintf("not enough liquidity on %s: %s needed, %s available", t.Lane.To, minted, dst.Available())
		default:
			dst.Reserved = dst.Reserved.Add(minted)
			t.Status, t.Fee, t.Reserved = StatusReserved, fee, minted
			t.record(StepReserve, OutcomeReserved, fmt.Sprintf("%s reserved on %s, fee %s", minted, t.Lane.To, fee), now)
			return &Change{Transfer: t, Books: []Book{b.touch(dst, now)}}, OutcomeReserved, nil
		}
		t.record(StepReserve, OutcomeRefund, t.Reason, now)
		return &Change{Transfer: t}, OutcomeRefund, nil
	})
	return outcome, err
}

// Message is what the gateway's own transfers say: how a later attempt, and
// reconciliation, recognise them among a token service's transactions.
func Message(transferID, kind string) string {
	return "federation-gateway bridge " + transferID + " " + kind
}

// Mint pays the receiver on the target registry from the gateway's account there, with the
// Idempotency-Key <transfer>#mint. Before it sends, it records that a mint may go out; a
// later attempt then looks for the mint among the target's transactions first, and sends
// again with the same key only when it is not there. A refusal (a 4xx that applied
// nothing) releases the reservation and sends the deposit back; an unknown outcome (a
// timeout, a lost answer, a 5xx) is never compensated: it is thrown as ErrMintUnknown and
// resolved by the retry. Errors: ErrMintUnknown, ErrUnavailable, ErrConflict,
// ErrInvalidState.
func (b *Bridge) Mint(ctx context.Context, id string) (string, error) {
	t, err := b.store.Transfer(ctx, id)
	if err != nil {
		return "", fault(err, "read transfer "+id)
	}
	if t.Status != StatusReserved {
		if _, forward := rank[t.Status]; forward && rank[t.Status] < rank[StatusReserved] {
			return "", taskErr(ErrInvalidState, nil, "transfer %s is %s, not reserved", t.ID, t.Status)
		}
		return onward(t, OutcomeMinted)
	}
	dst, err := b.tokens(t.Lane.To)
	if err != nil {
		return "", taskErr(ErrInvalidState, err, "lane %s", t.Lane)
	}
	t, tx, err, failed := b.payOnce(ctx, t, t.MintSentAt, func(t *Transfer, now time.Time) { t.MintSentAt = now }, dst,
		TokenTransfer{Receiver: t.ReceiverAccount, Amount: t.Reserved, Message: Message(t.ID, StepMint), IdempotencyKey: t.ID + "#mint"},
		ErrMintUnknown, "the mint of "+id)
	if failed != nil {
		return "", failed
	}
	var te *TokenError
	switch {
	case errors.As(err, &te) && te.Kind == TokenRefused:
		return b.mintRefused(ctx, id, fmt.Sprintf("%s refused the mint: %s", t.Lane.To, te.Error()))
	case err != nil:
		return "", tokenFault(err, ErrMintUnknown, "mint "+id+" on "+t.Lane.To)
	case tx.Status == TxFailed:
		return b.mintRefused(ctx, id, fmt.Sprintf("the mint %s failed on %s", tx.ID, t.Lane.To))
	case tx.Status != TxCompleted:
		return "", taskErr(ErrMintUnknown, nil, "the mint %s of %s is %s", tx.ID, id, tx.Status)
	case !tx.Amount.Equal(t.Reserved) || tx.Receiver != t.ReceiverAccount:
		return "", taskErr(ErrInvalidState, nil, "%s reports mint %s of %s to %s, not %s to %s", t.Lane.To, tx.ID, tx.Amount, tx.Receiver, t.Reserved, t.ReceiverAccount)
	}
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusReserved {
			out, err := onward(t, OutcomeMinted)
			return nil, out, err
		}
		bks, err := b.books(ctx, t.Lane.To)
		if err != nil {
			return nil, "", err
		}
		now := b.now()
		bk := bks[t.Lane.To]
		bk.Reserved = bk.Reserved.Sub(t.Reserved)
		bk.Mints = bk.Mints.Add(tx.Amount)
		bk.TEGFees = bk.TEGFees.Add(tx.Fee)
		entries := b.paid(t, seqMint, seqMintFee, EntryMint, t.Lane.To, tx, now)
		t.Status, t.Minted, t.MintTx, t.Reserved = StatusMinted, tx.Amount, tx.ID, decimal.Zero
		t.record(StepMint, OutcomeMinted, fmt.Sprintf("%s paid to %s on %s (transaction %s)", tx.Amount, tx.Receiver, t.Lane.To, tx.ID), now)
		return &Change{Transfer: t, Books: []Book{b.touch(bk, now)}, Entries: entries}, OutcomeMinted, nil
	})
	return outcome, err
}

// mintRefused releases the reservation and turns the transfer to its refund.
func (b *Bridge) mintRefused(ctx context.Context, id, reason string) (string, error) {
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusReserved {
			out, err := onward(t, OutcomeMinted)
			return nil, out, err
		}
		bks, err := b.books(ctx, t.Lane.To)
		if err != nil {
			return nil, "", err
		}
		now := b.now()
		bk := bks[t.Lane.To]
		bk.Reserved = bk.Reserved.Sub(t.Reserved)
		t.Status, t.Reason, t.Reserved = StatusRefunding, reason, decimal.Zero
		t.record(StepMint, OutcomeRefund, reason, now)
		return &Change{Transfer: t, Books: []Book{b.touch(bk, now)}}, OutcomeRefund, nil
	})
	return outcome, err
}

// payOnce sends p from the gateway's account on r at most once, whatever earlier attempts
// of the step did. The first attempt records that the payment may go out (mark, on the
// transfer still in its status, at sentAt) before it sends; a later one looks for p among
// the account's transactions since then and sends again, with p's idempotency key, only
// when it is not there or failed. It returns the transfer as recorded, the payment's
// transaction and the token service's error for the caller to judge (a refusal, an
// unknown outcome); failed is a failure to record or to look, never to be compensated:
// unknown is its task error when the search's outcome is unknown, what names the payment.
func (b *Bridge) payOnce(ctx context.Context, t Transfer, sentAt time.Time, mark func(*Transfer, time.Time), r Registry, p TokenTransfer, unknown, what string) (_ Transfer, _ TokenTx, payErr, failed error) {
	var tx TokenTx
	var found bool
	if sentAt.IsZero() {
		var err error
		if t, err = b.intend(ctx, t.ID, t.Status, mark); err != nil {
			return t, tx, nil, err
		}
	} else {
		var err error
		tx, found, err = b.search(ctx, r.Tokens, sentAt.Add(-time.Minute), func(tx TokenTx) bool {
			return tx.Message == p.Message && tx.Sender == r.Account
		})
		if err != nil {
			return t, tx, nil, tokenFault(err, unknown, "look for "+what)
		}
	}
	if !found || tx.Status == TxFailed {
		tx, payErr = r.Tokens.Transfer(ctx, p)
	}
	return t, tx, payErr, nil
}

// paid is the ledger's entries of a payment tx the gateway made on registry: the payment,
// and the token service's fee when it charged one.
func (b *Bridge) paid(t Transfer, seq, feeSeq int, kind, registry string, tx TokenTx, now time.Time) []Entry {
	entries := []Entry{b.entry(t, seq, kind, registry, tx.Amount, tx.Receiver, tx.ID, now)}
	if tx.Fee.IsPositive() {
		entries = append(entries, b.entry(t, feeSeq, EntryTEGFee, registry, tx.Fee, "", tx.ID, now))
	}
	return entries
}

// intend records, before a mint or refund is sent, that it may have been: set changes the
// transfer, which must still be in status.
func (b *Bridge) intend(ctx context.Context, id, status string, set func(t *Transfer, now time.Time)) (Transfer, error) {
	t, _, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != status {
			return nil, "", taskErr(ErrConflict, nil, "transfer %s changed to %s", t.ID, t.Status)
		}
		set(&t, b.now())
		return &Change{Transfer: t}, "", nil
	})
	return t, err
}

// Settle settles a minted transfer: the deposit is no longer locked in the source
// registry's books, the fee is entered in the ledger, and the transfer is
// completed: deposited = minted + fee. Errors: ErrUnavailable, ErrConflict, ErrInvalidState.
func (b *Bridge) Settle(ctx context.Context, id string) (string, error) {
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusMinted {
			if _, forward := rank[t.Status]; forward && rank[t.Status] < rank[StatusMinted] {
				return nil, "", taskErr(ErrInvalidState, nil, "transfer %s is %s, not minted", t.ID, t.Status)
			}
			out, err := onward(t, OutcomeCompleted)
			return nil, out, err
		}
		if !t.Minted.Add(t.Fee).Equal(t.Deposited) {
			return nil, "", taskErr(ErrInvalidState, nil, "transfer %s: minted %s + fee %s is not the deposit %s", t.ID, t.Minted, t.Fee, t.Deposited)
		}
		bks, err := b.books(ctx, t.Lane.From)
		if err != nil {
			return nil, "", err
		}
		now := b.now()
		bk := bks[t.Lane.From]
		bk.Locked = bk.Locked.Sub(t.Deposited)
		bk.Fees = bk.Fees.Add(t.Fee)
		t.Status = StatusCompleted
		t.record(StepSettle, OutcomeCompleted, fmt.Sprintf("deposited %s = minted %s + fee %s", t.Deposited, t.Minted, t.Fee), now)
		return &Change{Transfer: t, Books: []Book{b.touch(bk, now)},
			Entries: []Entry{b.entry(t, seqFee, EntryFee, t.Lane.From, t.Fee, "", "", now)}}, OutcomeCompleted, nil
	})
	return outcome, err
}

// Refund sends a claimed deposit back to its real sender, as it was, with the
// Idempotency-Key <transfer>#refund, resolving an earlier attempt of unknown outcome
// first as Mint does. Errors: ErrRefundUnknown, ErrRefundRefused, ErrUnavailable,
// ErrConflict, ErrInvalidState.
func (b *Bridge) Refund(ctx context.Context, id string) (string, error) {
	t, err := b.store.Transfer(ctx, id)
	if err != nil {
		return "", fault(err, "read transfer "+id)
	}
	switch {
	case t.Status == StatusRefunded:
		return OutcomeRefunded, nil
	case t.Status != StatusRefunding:
		return "", taskErr(ErrInvalidState, nil, "transfer %s is %s, not refunding", t.ID, t.Status)
	case t.DepositSender == "" || !t.Reserved.IsZero():
		return "", taskErr(ErrInvalidState, nil, "transfer %s has no claimed deposit to refund, or holds a reservation", t.ID)
	}
	src, err := b.tokens(t.Lane.From)
	if err != nil {
		return "", taskErr(ErrInvalidState, err, "lane %s", t.Lane)
	}
	t, tx, err, failed := b.payOnce(ctx, t, t.RefundSentAt, func(t *Transfer, now time.Time) { t.RefundSentAt = now }, src,
		TokenTransfer{Receiver: t.DepositSender, Amount: t.Deposited, Message: Message(t.ID, StepRefund), IdempotencyKey: t.ID + "#refund"},
		ErrRefundUnknown, "the refund of "+id)
	if failed != nil {
		return "", failed
	}
	var te *TokenError
	switch {
	case errors.As(err, &te) && te.Kind == TokenRefused:
		return "", taskErr(ErrRefundRefused, err, "%s refused the refund of %s", t.Lane.From, id)
	case err != nil:
		return "", tokenFault(err, ErrRefundUnknown, "refund "+id+" on "+t.Lane.From)
	case tx.Status != TxCompleted:
		return "", taskErr(ErrRefundUnknown, nil, "the refund %s of %s is %s", tx.ID, id, tx.Status)
	case !tx.Amount.Equal(t.Deposited) || tx.Receiver != t.DepositSender:
		return "", taskErr(ErrInvalidState, nil, "%s reports refund %s of %s to %s, not %s to %s", t.Lane.From, tx.ID, tx.Amount, tx.Receiver, t.Deposited, t.DepositSender)
	}
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusRefunding {
			out, err := onward(t, OutcomeRefunded)
			return nil, out, err
		}
		bks, err := b.books(ctx, t.Lane.From)
		if err != nil {
			return nil, "", err
		}
		now := b.now()
		bk := bks[t.Lane.From]
		bk.Locked = bk.Locked.Sub(t.Deposited)
		bk.Refunds = bk.Refunds.Add(tx.Amount)
		bk.TEGFees = bk.TEGFees.Add(tx.Fee)
		entries := b.paid(t, seqRefund, seqRefFee, EntryRefund, t.Lane.From, tx, now)
		t.Status, t.Refunded, t.RefundTx = StatusRefunded, tx.Amount, tx.ID
		t.record(StepRefund, OutcomeRefunded, fmt.Sprintf("%s paid back to %s on %s (transaction %s)", tx.Amount, tx.Receiver, t.Lane.From, tx.ID), now)
		return &Change{Transfer: t, Books: []Book{b.touch(bk, now)}, Entries: entries}, OutcomeRefunded, nil
	})
	return outcome, err
}

// Park puts a transfer whose step failed for good into manual_review, with the failure
// as its reason, for an operator to resolve. Errors: ErrUnavailable, ErrConflict.
func (b *Bridge) Park(ctx context.Context, id string, f Failure) (string, error) {
	reason := f.Error
	if f.Cause != "" {
		reason += ": " + clipLong(f.Cause)
	}
	_, outcome, err := b.apply(ctx, id, func(t Transfer) (*Change, string, error) {
		if Final(t.Status) || t.Status == StatusManualReview {
			return nil, OutcomeParked, nil
		}
		t.ParkedFrom, t.Status, t.Reason = t.Status, StatusManualReview, reason
		t.record(StepPark, OutcomeParked, reason, b.now())
		return &Change{Transfer: t}, OutcomeParked, nil
	})
	return outcome, err
}

// pageTries is how often search asks for one page of transactions. A search that does
// not find what it looks for reads every page since its start, and one page that fails
// would fail the whole step: a read is safe to repeat, so a page is tried again at once
// (after 50 ms, then 100 ms) before the step gives up and Step Functions retries it.
const pageTries = 3

func (b *Bridge) transactions(ctx context.Context, ts TokenService, since time.Time, limit, offset int) (TokenPage, error) {
	for try := 1; ; try++ {
		res, err := ts.Transactions(ctx, since, limit, offset)
		var te *TokenError
		if err == nil || try == pageTries || (errors.As(err, &te) && te.Kind == TokenRefused) {
			return res, err
		}
		if err := wait.Sleep(ctx, time.Duration(try)*50*time.Millisecond); err != nil {
			return res, fmt.Errorf("list transactions: %w", err)
		}
	}
}

func clipLong(s string) string {
	if len(s) > 500 {
		return s[:500] + "..."
	}
	return s
}

// search looks through the gateway's transactions on a token service from since on,
// newest first, for one that matches, at most b.pages pages of 100.
func (b *Bridge) search(ctx context.Context, ts TokenService, since time.Time, match func(TokenTx) bool) (TokenTx, bool, error) {
	const page = 100
	for p := 0; p < b.pages; p++ {
		res, err := b.transactions(ctx, ts, since, page, p*page)
		if err != nil {
			return TokenTx{}, false, err
		}
		for _, tx := range res.Transactions {
			if match(tx) {
				return tx, true, nil
			}
		}
		if len(res.Transactions) < page || (p+1)*page >= res.Total {
			break
		}
	}
	return TokenTx{}, false, nil
}
