package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Operator actions. Operators reach them through the operator function, which only IAM
// principals allowed lambda:InvokeFunction can call; every action that changes something
// is appended to the audit ledger under its request ID, and applied once.
const (
	ActionSeed       = "seed"       // record liquidity put into the gateway's account on a registry
	ActionPause      = "pause"      // stop a lane accepting transfers (and reserving for accepted ones)
	ActionResume     = "resume"     // let it accept again
	ActionSetLimits  = "set_limits" // change a lane's fee rate, min, max, bucket
	ActionListParked = "list_manual_review"
	ActionResolve    = "resolve"   // resolve a transfer in manual_review
	ActionLanes      = "lanes"     // the lanes, as status shows them
	ActionAuditLog   = "audit_log" // the latest audit entries
)

// Resolutions of a transfer in manual_review.
const (
	// ResolveRetry runs the saga again from where the transfer stopped.
	ResolveRetry = "retry"
	// ResolveRefunded records a refund an operator made outside the bridge, after finding
	// it among the source registry's transactions.
	ResolveRefunded = "refunded"
	// ResolveCompleted records a mint that did happen, after finding it among the target
	// registry's transactions, and settles the transfer.
	ResolveCompleted = "completed"
)

// OperatorRequest is an operator's action.
type OperatorRequest struct {
	Action    string `json:"action"`
	RequestID string `json:"request_id,omitempty"` // required for actions that change something
	Operator  string `json:"operator,omitempty"`   // who asks, for the audit ledger
	Reason    string `json:"reason,omitempty"`

	Registry      string       `json:"registry,omitempty"`
	Amount        string       `json:"amount,omitempty"`
	Lane          string       `json:"lane,omitempty"`
	Limits        *LimitsInput `json:"limits,omitempty"`
	TransferID    string       `json:"transfer_id,omitempty"`
	Resolution    string       `json:"resolution,omitempty"`
	TransactionID string       `json:"transaction_id,omitempty"`
	Limit         int          `json:"limit,omitempty"`
}

// LimitsInput is a change of a lane's limits: the fields given change, as decimal strings.
type LimitsInput struct {
	FeeRate  string `json:"fee_rate,omitempty"`
	Min      string `json:"min,omitempty"`
	Max      string `json:"max,omitempty"`
	Capacity string `json:"capacity,omitempty"`
	Refill   string `json:"refill_per_second,omitempty"`
}

// OperatorResult is what an action answers.
type OperatorResult struct {
	Action  string          `json:"action"`
	Applied bool            `json:"applied"`           // false: the request ID was applied before
	Result  json.RawMessage `json:"result,omitempty"`  // the action's data
	Message string          `json:"message,omitempty"` // what happened, in words
}

// Operate runs an operator action. Errors: EINVALID, ENOTFOUND, ECONFLICT.
func (b *Bridge) Operate(ctx context.Context, req OperatorRequest) (OperatorResult, error) {
	res := OperatorResult{Action: req.Action, Applied: true}
	known := []string{ActionSeed, ActionPause, ActionResume, ActionSetLimits, ActionListParked, ActionResolve, ActionLanes, ActionAuditLog}
	if !slices.Contains(known, req.Action) {
		return res, federation.Errorf(federation.EINVALID, "action %q: want %s", clip(req.Action), strings.Join(known, ", "))
	}
	mutating := req.Action != ActionListParked && req.Action != ActionLanes && req.Action != ActionAuditLog
	if mutating && (req.RequestID == "" || len(req.RequestID) > 128 || !printable(req.RequestID)) {
		return res, federation.Errorf(federation.EINVALID, "request_id is required (at most 128 printable characters): an action is applied once per request_id")
	}
	if mutating && req.Operator == "" {
		return res, federation.Errorf(federation.EINVALID, "operator is required: who asks, for the audit ledger")
	}
	audit := AuditEntry{RequestID: req.RequestID, Operator: req.Operator, Action: req.Action, Reason: req.Reason, At: b.now()}
	var out any
	var err error
	switch req.Action {
	case ActionSeed:
		out, err = b.seed(ctx, req, audit)
	case ActionPause, ActionResume, ActionSetLimits:
		out, err = b.tuneLane(ctx, req, audit)
	case ActionListParked:
		var ts []Transfer
		ts, err = b.store.Parked(ctx, limitOr(req.Limit, 100))
		views := make([]View, len(ts))
		for i, t := range ts {
			views[i] = t.View()
		}
		out = views
	case ActionResolve:
		out, err = b.resolve(ctx, req, audit)
	case ActionLanes:
		out, err = b.Lanes(ctx)
	case ActionAuditLog:
		out, err = b.store.AuditLog(ctx, limitOr(req.Limit, 50))
	}
	var c *Conflict
	if errors.As(err, &c) && c.Which == ConflictAudit {
		res.Applied, res.Message = false, "request "+req.RequestID+" was applied before; nothing changed"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // operators read "alpha->beta"
	if err := enc.Encode(out); err != nil {
		return res, fmt.Errorf("operator result: %w", err)
	}
	res.Result = bytes.TrimSpace(buf.Bytes())
	return res, nil
}

func limitOr(n, def int) int {
	if n <= 0 || n > 1000 {
		return def
	}
	return n
}

func detail(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a lane is "alpha->beta", not "alpha-\u003ebeta"
	_ = enc.Encode(v)
	return strings.TrimSuffix(buf.String(), "\n")
}

// seed records liquidity an operator put into the gateway's account on a registry: the
// registry's initial liquidity unless an amount is given.
func (b *Bridge) seed(ctx context.Context, req OperatorRequest, audit AuditEntry) (any, error) {
	r, ok := b.registries[req.Registry]
	if !ok {
		return nil, federation.Errorf(federation.ENOTFOUND, "no bridge registry %q", clip(req.Registry))
	}
	amount := r.InitialLiquidity
	if req.Amount != "" {
		var err error
		if amount, err = ParseAmount("amount", req.Amount); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		bk, err := b.book(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		now := b.now()
		bk.Seeded = bk.Seeded.Add(amount)
		bk = b.touch(bk, now)
		audit.Target, audit.Detail = r.ID, detail(map[string]string{"amount": amount.String(), "seeded": bk.Seeded.String()})
		e := Entry{Ref: "op-" + req.RequestID, Seq: 1, Kind: EntrySeed, Registry: r.ID, Amount: amount, Account: r.Account, At: now}
		err = b.store.Seed(ctx, bk, e, audit)
		var c *Conflict
		if errors.As(err, &c) && c.Which == ConflictBook && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return map[string]string{"registry": r.ID, "seeded": amount.String(), "balance": bk.Balance().String(), "available": bk.Available().String()}, nil
	}
}

// tuneLane pauses, resumes or changes the limits of a lane.
func (b *Bridge) tuneLane(ctx context.Context, req OperatorRequest, audit AuditEntry) (any, error) {
	id, err := ParseLaneID(req.Lane)
	if err != nil {
		return nil, err
	}
	if _, ok := b.lanes[id]; !ok {
		return nil, federation.Errorf(federation.ENOTFOUND, "no bridge lane %s", id)
	}
	for attempt := 0; ; attempt++ {
		stored, err := b.store.Lanes(ctx, []LaneID{id})
		if err != nil {
			return nil, err
		}
		var s *Lane
		if l, ok := stored[id]; ok {
			s = &l
		}
		lane, _ := b.lane(id, s)
		now := b.now()
		lane.Bucket, lane.BucketAt = lane.Level(now), now
		switch req.Action {
		case ActionPause:
			lane.Paused = true
		case ActionResume:
			lane.Paused = false
		case ActionSetLimits:
			if req.Limits == nil {
				return nil, federation.Errorf(federation.EINVALID, "limits is required: fee_rate, min, max, capacity, refill_per_second")
			}
			if lane.Limits, err = req.Limits.apply(lane.Limits); err != nil {
				return nil, err
			}
			if msg := lane.Limits.Check(); msg != "" {
				return nil, federation.Errorf(federation.EINVALID, "limits: %s", msg)
			}
			lane.Tuned = true
			if lane.Bucket.GreaterThan(lane.Limits.Capacity) {
				lane.Bucket = lane.Limits.Capacity
			}
		}
		audit.Target = id.String()
		audit.Detail = detail(settings(lane, now))
		err = b.store.PutLane(ctx, lane, &audit)
		var c *Conflict
		if errors.As(err, &c) && c.Which == ConflictLane && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The answer is the lane as status shows it, liquidity and transfers in flight
		// included.
		lanes, err := b.Lanes(ctx)
		if err != nil {
			return nil, err
		}
		for _, l := range lanes {
			if l.Lane == id.String() {
				return l, nil
			}
		}
		return laneView(lane, now), nil
	}
}

// laneSettings is what an operator's action on a lane set: its audit entry's detail.
type laneSettings struct {
	Lane            string `json:"lane"`
	Paused          bool   `json:"paused"`
	Bucket          string `json:"bucket"`
	Capacity        string `json:"capacity"`
	RefillPerSecond string `json:"refill_per_second"`
	FeeRate         string `json:"fee_rate"`
	Min             string `json:"min"`
	Max             string `json:"max"`
}

func settings(l Lane, now time.Time) laneSettings {
	v := laneView(l, now)
	return laneSettings{Lane: v.Lane, Paused: v.Paused, Bucket: v.Bucket, Capacity: v.Capacity, RefillPerSecond: v.RefillPerSecond,
		FeeRate: v.FeeRate, Min: v.Min, Max: v.Max}
}

func (in LimitsInput) apply(l Limits) (Limits, error) {
	for _, f := range []struct {
		name, value string
		to          *decimal.Decimal
	}{{"fee_rate", in.FeeRate, &l.FeeRate}, {"min", in.Min, &l.Min}, {"max", in.Max, &l.Max},
		{"capacity", in.Capacity, &l.Capacity}, {"refill_per_second", in.Refill, &l.Refill}} {
		if f.value == "" {
			continue
		}
		if f.name == "fee_rate" && f.value == "0" {
			*f.to = decimal.Zero
			continue
		}
		d, err := ParseAmount("limits."+f.name, f.value)
		if err != nil {
			return l, err
		}
		*f.to = d
	}
	return l, nil
}

func laneView(l Lane, now time.Time) federation.LaneStatus {
	return federation.LaneStatus{Lane: l.ID.String(), From: l.ID.From, To: l.ID.To, Paused: l.Paused, Bucket: l.Level(now).String(),
		Capacity: l.Limits.Capacity.String(), RefillPerSecond: l.Limits.Refill.String(), FeeRate: l.Limits.FeeRate.String(),
		Min: l.Limits.Min.String(), Max: l.Limits.Max.String()}
}

// resolve resolves a transfer in manual_review.
func (b *Bridge) resolve(ctx context.Context, req OperatorRequest, audit AuditEntry) (any, error) {
	t, err := b.store.Transfer(ctx, req.TransferID)
	if err != nil {
		return nil, err
	}
	// The request is recorded first, as asked: a replay is recognised by its request ID,
	// and an attempt that fails below stays in the audit ledger too.
	audit.Target = t.ID
	audit.Detail = detail(map[string]string{"resolution": req.Resolution, "transaction_id": req.TransactionID, "status": t.Status,
		"parked_from": t.ParkedFrom, "reason": t.Reason})
	if err := b.store.Audit(ctx, audit); err != nil {
		return nil, err
	}
	if t.Status != StatusManualReview {
		return nil, federation.Errorf(federation.ECONFLICT, "transfer %s is %s, not in manual_review", t.ID, t.Status)
	}
	switch req.Resolution {
	case ResolveRetry:
		t, _, err = b.apply(ctx, t.ID, func(t Transfer) (*Change, string, error) {
			if t.Status != StatusManualReview {
				return nil, "", federation.Errorf(federation.ECONFLICT, "transfer %s changed to %s", t.ID, t.Status)
			}
			t.Status, t.Attempt, t.Reason = t.ParkedFrom, t.Attempt+1, ""
			t.ExecutionARN = b.executions.ARN(executionName(t))
			t.record(StepResolve, ResolveRetry, fmt.Sprintf("operator %s: run again (attempt %d)", req.Operator, t.Attempt), b.now())
			return &Change{Transfer: t}, "", nil
		})
		if err != nil {
			return nil, err
		}
		b.start(ctx, &t)
		return t.View(), nil
	case ResolveRefunded, ResolveCompleted:
		return b.resolveWithEvidence(ctx, t, req)
	default:
		return nil, federation.Errorf(federation.EINVALID, "resolution %q: want retry, refunded or completed", clip(req.Resolution))
	}
}

// resolveWithEvidence records a refund or mint an operator made or found, once the token
// service shows it: the books follow only what the token service confirms.
func (b *Bridge) resolveWithEvidence(ctx context.Context, t Transfer, req OperatorRequest) (any, error) {
	if req.TransactionID == "" {
		return nil, federation.Errorf(federation.EINVALID, "transaction_id is required: the token service transaction that shows the %s", req.Resolution)
	}
	registry, receiver, amount := t.Lane.From, t.DepositSender, t.Deposited
	switch {
	case req.Resolution == ResolveRefunded && (t.DepositSender == "" || t.ParkedFrom == StatusMinted):
		return nil, federation.Errorf(federation.ECONFLICT, "transfer %s has no claimed deposit to refund, or was minted", t.ID)
	case req.Resolution == ResolveCompleted && t.ParkedFrom != StatusReserved:
		return nil, federation.Errorf(federation.ECONFLICT, "transfer %s was %s, not reserved for a mint", t.ID, t.ParkedFrom)
	case req.Resolution == ResolveCompleted:
		registry, receiver, amount = t.Lane.To, t.ReceiverAccount, t.Reserved
	}
	r, err := b.tokens(registry)
	if err != nil {
		return nil, err
	}
	tx, found, err := b.search(ctx, r.Tokens, t.CreatedAt.Add(-time.Hour), func(tx TokenTx) bool { return tx.ID == req.TransactionID })
	if err != nil {
		return nil, federation.Wrap(federation.EUNAVAILABLE, err, "the token service of "+registry+" did not answer")
	}
	if !found || tx.Status != TxCompleted || tx.Sender != r.Account || tx.Receiver != receiver || !tx.Amount.Equal(amount) {
		return nil, federation.Errorf(federation.ECONFLICT, "%s shows no completed transfer %s of %s from the gateway to %s", registry, req.TransactionID, amount, receiver)
	}
	t, _, err = b.apply(ctx, t.ID, func(t Transfer) (*Change, string, error) {
		if t.Status != StatusManualReview {
			return nil, "", federation.Errorf(federation.ECONFLICT, "transfer %s changed to %s", t.ID, t.Status)
		}
		now := b.now()
		bks, err := b.books(ctx, t.Lane.From, t.Lane.To)
		if err != nil {
			return nil, "", err
		}
		src, dst := bks[t.Lane.From], bks[t.Lane.To]
		dst.Reserved = dst.Reserved.Sub(t.Reserved)
		var entries []Entry
		if req.Resolution == ResolveRefunded {
			src.Locked = src.Locked.Sub(t.Deposited)
			src.Refunds, src.TEGFees = src.Refunds.Add(tx.Amount), src.TEGFees.Add(tx.Fee)
			t.Status, t.Refunded, t.RefundTx = StatusRefunded, tx.Amount, tx.ID
			entries = b.paid(t, seqRefund, seqRefFee, EntryRefund, t.Lane.From, tx, now)
		} else {
			dst.Mints, dst.TEGFees = dst.Mints.Add(tx.Amount), dst.TEGFees.Add(tx.Fee)
			src.Locked = src.Locked.Sub(t.Deposited)
			src.Fees = src.Fees.Add(t.Fee)
			t.Status, t.Minted, t.MintTx = StatusCompleted, tx.Amount, tx.ID
			entries = append(b.paid(t, seqMint, seqMintFee, EntryMint, t.Lane.To, tx, now),
				b.entry(t, seqFee, EntryFee, t.Lane.From, t.Fee, "", "", now))
		}
		t.Reserved, t.Reason = decimal.Zero, ""
		t.record(StepResolve, t.Status, fmt.Sprintf("operator %s: %s, transaction %s", req.Operator, req.Resolution, tx.ID), now)
		return &Change{Transfer: t, Books: []Book{b.touch(src, now), b.touch(dst, now)}, Entries: entries}, "", nil
	})
	if err != nil {
		return nil, err
	}
	return t.View(), nil
}
