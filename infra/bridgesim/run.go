package bridgesim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/teg"
)

// Plan is one transfer of a run and the faults it meets.
type Plan struct {
	Sender   string // demo agent (humanReadableId)
	From, To string // DIDs
	Source   string // the sender's registry
	Target   string
	Amount   string // asked
	Deposit  string // deposited: Amount, another amount (a mismatch), or "" for none at all
	// MintFault and RefundFault are played on the first attempt of the mint or refund.
	MintFault, RefundFault string
	// Duplicate sends the request twice at once; Conflicting makes the second one ask
	// for another amount against the same deposit.
	Duplicate, Conflicting bool

	DepositTx  string
	TransferID string
}

// Faulted reports whether the plan injects a fault.
func (p *Plan) Faulted() bool {
	return p.MintFault != "" || p.RefundFault != "" || p.Duplicate || p.Deposit != p.Amount
}

// Plans makes n transfer plans, both ways, with faults at every step: the mint and the
// refund meet each token service fault (503, 4xx, slowness, a timeout that applies late,
// applied then lost, applied then 5xx) or a kill of the task function after the token
// service applied it; deposits that do not match the request or do not exist; two
// requests at once for one deposit, the same or asking differently. Reads fail, stall or
// time out at random (Run).
func Plans(n int, seed uint64, fed *demo.Federation) []*Plan {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	mintFaults := []string{demo.FaultFail, demo.FaultReject, demo.FaultSlow, demo.FaultApplyLater, demo.FaultApplyLose, demo.FaultApply5xx, FaultKill}
	refundFaults := []string{demo.FaultFail, demo.FaultSlow, demo.FaultApplyLose, demo.FaultApply5xx, demo.FaultReject}
	plans := make([]*Plan, n)
	for i := range plans {
		src := demo.Alpha
		if rng.IntN(2) == 0 {
			src = demo.Beta
		}
		dst := demo.Beta
		if src == demo.Beta {
			dst = demo.Alpha
		}
		sender := Senders[src][rng.IntN(len(Senders[src]))]
		cents := 100 + rng.IntN(1900)
		amount := decimal.New(int64(cents), -2).Add(decimal.New(int64(rng.IntN(1000)), -8))
		p := &Plan{Sender: sender, From: fed.Agent(sender).DID, To: Receivers[dst][rng.IntN(len(Receivers[dst]))], Source: src, Target: dst,
			Amount: amount.String(), Deposit: amount.String(), Duplicate: rng.IntN(10) == 0}
		p.Conflicting = p.Duplicate && rng.IntN(2) == 0
		switch x := rng.IntN(100); {
		case x < 8: // clean
		case x < 70:
			p.MintFault = mintFaults[rng.IntN(len(mintFaults))]
			if p.MintFault == FaultKill && rng.IntN(3) != 0 {
				p.MintFault = demo.FaultApplyLose // kills cost a function timeout each: fewer of them
			}
			if p.MintFault == demo.FaultReject && rng.IntN(3) == 0 {
				p.RefundFault = refundFaults[rng.IntN(len(refundFaults)-1)] // refused, then a faulty refund
			}
		case x < 94: // the deposit does not match: refunded, through faults
			p.Deposit = amount.Add(decimal.New(int64(1+rng.IntN(500)), -2)).String()
			p.RefundFault = refundFaults[rng.IntN(len(refundFaults))]
			if rng.IntN(4) == 0 {
				p.RefundFault = ""
			}
		default: // no deposit at all: rejected
			p.Deposit = ""
		}
		plans[i] = p
	}
	return plans
}

// Report is what a run did and what the token services' books say of it.
type Report struct {
	Transfers, Faulted                            int
	Completed, Refunded, Rejected, ManualReview   int
	Unfinished                                    int
	DoubleMints, DoubleRefunds, MintedAndRefunded int
	ClaimedTwice, Orphaned                        int
	Violations                                    []string // per-transfer invariants that do not hold
	ValueBefore, ValueAfter                       decimal.Decimal
	BooksMatch                                    bool // each registry's books = the gateway's balance there
	Drift                                         map[string]string
	Faults                                        map[string]int
	Elapsed                                       time.Duration
	ParkedReasons                                 map[string]int
	ParkedSamples                                 map[string]string          // the first reason of each kind, in full
	Final                                         map[string]bridge.Transfer `json:"-"` // the transfers as they ended
}

// OK reports whether every invariant holds.
func (r *Report) OK() bool {
	drift := true
	for _, d := range r.Drift {
		drift = drift && d == "0"
	}
	return r.Unfinished == 0 && r.DoubleMints == 0 && r.DoubleRefunds == 0 && r.MintedAndRefunded == 0 && r.ClaimedTwice == 0 &&
		r.Orphaned == 0 && len(r.Violations) == 0 && r.ValueBefore.Equal(r.ValueAfter) && r.BooksMatch && drift
}

// String summarises the report.
func (r *Report) String() string {
	return fmt.Sprintf("%d transfers (%d faulted) in %s: %d completed, %d refunded, %d rejected, %d manual_review, %d unfinished; "+
		"double mints %d, double refunds %d, minted and refunded %d, deposits claimed twice %d, orphaned deposits %d, violations %d; "+
		"value %s -> %s; books match %v; drift %v; faults %v; parked %v",
		r.Transfers, r.Faulted, r.Elapsed.Round(time.Millisecond), r.Completed, r.Refunded, r.Rejected, r.ManualReview, r.Unfinished,
		r.DoubleMints, r.DoubleRefunds, r.MintedAndRefunded, r.ClaimedTwice, r.Orphaned, len(r.Violations),
		r.ValueBefore, r.ValueAfter, r.BooksMatch, r.Drift, r.Faults, r.ParkedReasons)
}

// Run runs the plans with at most concurrency transfers in flight (each final or parked,
// or past deadline, before its worker asks for the next), then checks the invariants.
func (s *Sim) Run(ctx context.Context, plans []*Plan, concurrency int, readFaultRate float64, deadline time.Duration) (*Report, error) {
	start := time.Now()
	rep := &Report{Transfers: len(plans), ValueBefore: s.Value(), Drift: map[string]string{}, ParkedReasons: map[string]int{}, ParkedSamples: map[string]string{}}
	s.faults.setListRate(readFaultRate)
	// concurrency bounds the transfers in flight, as a client that waits for each of its
	// transfers would: the local cloud runs a few instances of the task function, and a
	// queue of thousands of executions would only measure the emulator's 30 s pick-up
	// limit.
	work := make(chan int)
	errs := make([]error, len(plans))
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p := plans[i]
				if errs[i] = s.submitPlan(ctx, i, p); errs[i] == nil {
					errs[i] = s.settle(ctx, p.TransferID, deadline)
				}
			}
		}()
	}
	for i, p := range plans {
		if p.Faulted() {
			rep.Faulted++
		}
		work <- i
	}
	close(work)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return rep, fmt.Errorf("transfer %d: %w", i, err)
		}
	}
	ids := make([]string, len(plans))
	for i, p := range plans {
		ids[i] = p.TransferID
	}
	transfers, err := s.wait(ctx, ids, time.Second) // each worker waited for its own
	if err != nil {
		return rep, err
	}
	s.faults.setListRate(0)
	rep.Elapsed = time.Since(start)
	rep.Faults = s.faults.Applied()
	rep.Final = transfers
	s.check(ctx, plans, transfers, rep)
	rep.ValueAfter = s.Value()
	if rep.Drift, err = s.Reconcile(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}

func (s *Sim) submitPlan(ctx context.Context, i int, p *Plan) error {
	if p.Deposit != "" {
		tx, err := s.Fed.TEG(p.Source).Deposit(s.Fed.TEGURL(p.Source), s.Fed.Agent(p.Sender).Account(), demo.GatewayAccount, p.Deposit, "bridge deposit")
		if err != nil {
			return err
		}
		p.DepositTx = tx.TransactionID
	} else {
		p.DepositTx = fmt.Sprintf("tx_%s_missing_%d", p.Source, i)
	}
	dep := bridge.Deposit{Registry: p.Source, TransactionID: p.DepositTx}
	p.TransferID = bridge.TransferID(dep)
	if p.MintFault != "" {
		s.faults.set(p.TransferID+"#mint", keyFault{kind: p.MintFault, delay: faultDelay(p.MintFault), left: faultCount(p.MintFault)})
	}
	if p.RefundFault != "" {
		s.faults.set(p.TransferID+"#refund", keyFault{kind: p.RefundFault, delay: faultDelay(p.RefundFault), left: faultCount(p.RefundFault)})
	}
	req := bridge.Request{From: p.From, To: p.To, Amount: p.Amount, Deposit: dep}
	key := "sim-" + p.DepositTx
	if !p.Duplicate {
		_, v, err := s.Submit(ctx, p.Sender, req, key)
		if err == nil && v.ID != p.TransferID {
			err = fmt.Errorf("transfer ID %s, want %s", v.ID, p.TransferID)
		}
		return err
	}
	// Two requests at once: one with the key, one without. The same request twice: both
	// answer the one transfer. Another amount against the same deposit: one makes the
	// transfer, the other is refused (409), whichever comes first.
	other := req
	if p.Conflicting {
		other.Amount = decimal.RequireFromString(p.Amount).Add(decimal.New(1, -2)).String()
	}
	var wg sync.WaitGroup
	var errA, errB error
	var a, b bridge.View
	var codeB int
	wg.Add(2)
	go func() { defer wg.Done(); _, a, errA = s.Submit(ctx, p.Sender, req, key) }()
	go func() { defer wg.Done(); codeB, b, errB = s.Submit(ctx, p.Sender, other, "") }()
	wg.Wait()
	if !p.Conflicting {
		if errA != nil || errB != nil {
			return fmt.Errorf("duplicate requests: %v / %v", errA, errB)
		}
		if a.ID != p.TransferID || b.ID != p.TransferID {
			return fmt.Errorf("duplicate requests answered %s and %s, want %s", a.ID, b.ID, p.TransferID)
		}
		return nil
	}
	switch {
	case errA == nil && errB == nil:
		return fmt.Errorf("two different requests for deposit %s both accepted: %s (%s) and %s (%s)", p.DepositTx, a.ID, a.Amount, b.ID, b.Amount)
	case errA == nil && a.ID == p.TransferID && codeB == http.StatusConflict:
	case errB == nil && b.ID == p.TransferID:
		// The other request won: the transfer asks for another amount than was deposited,
		// and the saga refunds the deposit as it is.
		p.Amount = other.Amount
	default:
		return fmt.Errorf("conflicting requests for deposit %s: %v / %d %v", p.DepositTx, errA, codeB, errB)
	}
	return nil
}

// settle waits until a transfer is final or parked, or deadline passes (which Run then
// reports as unfinished).
func (s *Sim) settle(ctx context.Context, id string, deadline time.Duration) error {
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		t, err := s.Store.Transfer(ctx, id)
		if err != nil {
			return err
		}
		if bridge.Final(t.Status) || t.Status == bridge.StatusManualReview {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func faultDelay(kind string) time.Duration {
	switch kind {
	case demo.FaultSlow:
		return 150 * time.Millisecond // under the gateway's timeout
	case demo.FaultApplyLater:
		return 1500 * time.Millisecond // past it: applied after the gateway gave up
	}
	return 0
}

// faultCount is how many requests a fault is played on. A lost answer twice: Go's HTTP
// client sends a request with an Idempotency-Key once more itself when a reused
// connection closes unanswered.
func faultCount(kind string) int {
	if kind == demo.FaultApplyLose {
		return 2
	}
	return 1
}

// check holds every transfer to the token services' own books.
func (s *Sim) check(ctx context.Context, plans []*Plan, transfers map[string]bridge.Transfer, rep *Report) {
	type moves struct{ mints, refunds []teg.Tx }
	byTransfer := map[string]*moves{}
	get := func(id string) *moves {
		if byTransfer[id] == nil {
			byTransfer[id] = &moves{}
		}
		return byTransfer[id]
	}
	deposits := map[string]teg.Tx{} // registry#tx
	inbound := map[string][]string{}
	for _, reg := range []string{demo.Alpha, demo.Beta} {
		for _, tx := range s.Fed.TEG(reg).Transactions() {
			switch {
			case tx.SenderAgentID == demo.GatewayAccount && strings.HasSuffix(tx.AttachedMessage, " mint"):
				id := strings.TrimSuffix(strings.TrimPrefix(tx.AttachedMessage, "federation-gateway bridge "), " mint")
				get(id).mints = append(get(id).mints, tx)
			case tx.SenderAgentID == demo.GatewayAccount && strings.HasSuffix(tx.AttachedMessage, " refund"):
				id := strings.TrimSuffix(strings.TrimPrefix(tx.AttachedMessage, "federation-gateway bridge "), " refund")
				get(id).refunds = append(get(id).refunds, tx)
			case tx.ReceiverAgentID == demo.GatewayAccount && tx.TransactionType == "transfer":
				deposits[reg+"#"+tx.TransactionID] = tx
				inbound[reg] = append(inbound[reg], tx.TransactionID)
			}
		}
	}
	violate := func(p *Plan, format string, args ...any) {
		rep.Violations = append(rep.Violations, p.TransferID+": "+fmt.Sprintf(format, args...))
	}
	claimedBy := map[string]string{}
	for _, p := range plans {
		t, ok := transfers[p.TransferID]
		m := get(p.TransferID)
		if len(m.mints) > 1 {
			rep.DoubleMints++
		}
		if len(m.refunds) > 1 {
			rep.DoubleRefunds++
		}
		if len(m.mints) > 0 && len(m.refunds) > 0 {
			rep.MintedAndRefunded++
		}
		if !ok {
			rep.Unfinished++
			violate(p, "no transfer")
			continue
		}
		dep, deposited := deposits[p.Source+"#"+p.DepositTx]
		if deposited {
			if other, seen := claimedBy[p.Source+"#"+p.DepositTx]; seen && other != t.ID {
				rep.ClaimedTwice++
			}
			claimedBy[p.Source+"#"+p.DepositTx] = t.ID
		}
		amount := func(s string) decimal.Decimal { return decimal.RequireFromString(s) }
		switch t.Status {
		case bridge.StatusCompleted:
			rep.Completed++
			if len(m.mints) != 1 || len(m.refunds) != 0 || !deposited {
				violate(p, "completed with %d mints, %d refunds, deposit %v", len(m.mints), len(m.refunds), deposited)
				continue
			}
			d, minted := amount(dep.Amount), amount(m.mints[0].Amount)
			fee := bridge.Fee(d, bridge.DefaultFeeRate)
			if !minted.Add(fee).Equal(d) || !t.Minted.Equal(minted) || !t.Fee.Equal(fee) || t.MintTx != m.mints[0].TransactionID ||
				m.mints[0].ReceiverAgentID != p.To || dep.SenderAgentID != s.Fed.Agent(p.Sender).Account() {
				violate(p, "completed: deposited %s, minted %s (recorded %s), fee %s (recorded %s)", d, minted, t.Minted, fee, t.Fee)
			}
		case bridge.StatusRefunded:
			rep.Refunded++
			if len(m.refunds) != 1 || len(m.mints) != 0 || !deposited {
				violate(p, "refunded with %d mints, %d refunds, deposit %v", len(m.mints), len(m.refunds), deposited)
				continue
			}
			if r := m.refunds[0]; !amount(r.Amount).Equal(amount(dep.Amount)) || r.ReceiverAgentID != dep.SenderAgentID || !t.Refunded.Equal(amount(r.Amount)) {
				violate(p, "refunded %s to %s; deposited %s by %s", r.Amount, r.ReceiverAgentID, dep.Amount, dep.SenderAgentID)
			}
		case bridge.StatusRejected:
			rep.Rejected++
			if len(m.mints)+len(m.refunds) != 0 || deposited {
				violate(p, "rejected with %d mints, %d refunds, deposit %v", len(m.mints), len(m.refunds), deposited)
			}
		case bridge.StatusManualReview:
			rep.ManualReview++
			reason, _, _ := strings.Cut(t.Reason, ":")
			rep.ParkedReasons[reason]++
			if _, ok := rep.ParkedSamples[reason]; !ok {
				rep.ParkedSamples[reason] = t.ID + ": " + t.Reason
			}
		default:
			rep.Unfinished++
			violate(p, "unfinished in %s", t.Status)
		}
	}
	// Each deposit's claim item names the one transfer that ended with it.
	var used []bridge.Deposit
	for _, p := range plans {
		if t, ok := transfers[p.TransferID]; ok && (t.Status == bridge.StatusCompleted || t.Status == bridge.StatusRefunded) {
			used = append(used, bridge.Deposit{Registry: p.Source, TransactionID: p.DepositTx})
		}
	}
	for start := 0; start < len(used); start += 100 {
		part := used[start:min(len(used), start+100)]
		claims, err := s.Store.Claimed(ctx, part)
		if err != nil {
			rep.Violations = append(rep.Violations, "read claims: "+err.Error())
			return
		}
		for _, d := range part {
			if id := claims[d]; id != bridge.TransferID(d) {
				rep.ClaimedTwice++
				rep.Violations = append(rep.Violations, fmt.Sprintf("deposit %s#%s claimed by %q, ended with %s", d.Registry, d.TransactionID, id, bridge.TransferID(d)))
			}
		}
	}
	var all []string
	for reg, ids := range inbound {
		deps := make([]bridge.Deposit, len(ids))
		for i, id := range ids {
			deps[i] = bridge.Deposit{Registry: reg, TransactionID: id}
		}
		for start := 0; start < len(deps); start += 100 {
			claimed, err := s.Store.Claimed(ctx, deps[start:min(len(deps), start+100)])
			if err != nil {
				rep.Violations = append(rep.Violations, "read claims: "+err.Error())
				return
			}
			for _, d := range deps[start:min(len(deps), start+100)] {
				if _, ok := claimed[d]; !ok {
					rep.Orphaned++
					all = append(all, d.Registry+"#"+d.TransactionID)
				}
			}
		}
	}
	sort.Strings(all)
	books, err := s.Store.Books(ctx, []string{demo.Alpha, demo.Beta})
	rep.BooksMatch = err == nil
	for _, reg := range []string{demo.Alpha, demo.Beta} {
		if b := books[reg]; !b.Balance().Equal(s.Fed.TEG(reg).Balance(demo.GatewayAccount)) || !b.Reserved.IsZero() && rep.ManualReview == 0 {
			rep.BooksMatch = false
		}
	}
}
