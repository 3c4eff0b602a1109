package bridge_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/federation"
)

const (
	sender   = "numerix/calculator" // alpha, did:key
	receiver = "did:agentvault:textkit/mirror"
)

// saga drives a fixture's transfers step by step, as the state machine would.
type saga struct {
	t  *testing.T
	fx *localtest.BridgeFixture
}

func newSaga(t *testing.T, configure func(*bridge.Options)) saga {
	return saga{t: t, fx: localtest.Bridge(t, configure)}
}

func (s saga) submit(amount, deposit, key string) (bridge.Transfer, bool, error) {
	s.t.Helper()
	from := s.fx.Fed.Agent(sender)
	return s.fx.Bridge.Submit(context.Background(), bridge.Request{From: from.DID, To: receiver, Amount: amount,
		Deposit: bridge.Deposit{Registry: "alpha", TransactionID: deposit}}, federation.Credential{Token: s.fx.Token(s.t, sender)}, key)
}

func (s saga) run(step, id string) (string, error) {
	return s.fx.Bridge.Run(context.Background(), step, id, nil)
}

// must runs a step and wants an outcome.
func (s saga) must(step, id, want string) {
	s.t.Helper()
	got, err := s.run(step, id)
	if err != nil || got != want {
		s.t.Fatalf("%s: %q, %v; want %q", step, got, err, want)
	}
}

func (s saga) balance(registry, account string) decimal.Decimal {
	return s.fx.Fed.TEG(registry).Balance(account)
}

func (s saga) transfer(id string) bridge.Transfer {
	s.t.Helper()
	tr, err := s.fx.Store.Transfer(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return tr
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestSagaCompletes(t *testing.T) {
	s := newSaga(t, nil)
	alice := s.fx.Fed.Agent(sender).Account()
	dep := s.fx.Deposit(t, sender, "alpha", "25.0")
	tr, created, err := s.submit("25.0", dep, "key-1")
	if err != nil || !created || tr.Status != bridge.StatusPending || tr.ExecutionARN == "" {
		t.Fatalf("submit: %+v %v %v", tr, created, err)
	}
	// A repeat (same key, or same deposit) answers the same transfer.
	if again, created, err := s.submit("25.0", dep, "key-1"); err != nil || created || again.ID != tr.ID {
		t.Fatalf("repeat: %+v %v %v", again, created, err)
	}
	if again, created, err := s.submit("25.0", dep, ""); err != nil || created || again.ID != tr.ID {
		t.Fatalf("repeat without key: %+v %v %v", again, created, err)
	}
	if _, _, err := s.submit("26.0", dep, "key-1"); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Fatalf("the key for another request: %v", err)
	}
	if _, _, err := s.submit("26.0", dep, ""); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Fatalf("the deposit for another request: %v", err)
	}
	before := s.balance("beta", receiver)
	// A page of transactions that fails twice is read again within the step.
	s.fx.Fed.TEG("alpha").Queue("transactions", demo.Fault{Kind: demo.FaultFail}, 2)
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified)
	s.fx.Fed.TEG("alpha").ClearFaults()
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified) // again: nothing more
	s.must(bridge.StepReserve, tr.ID, bridge.OutcomeReserved)
	s.must(bridge.StepMint, tr.ID, bridge.OutcomeMinted)
	s.must(bridge.StepMint, tr.ID, bridge.OutcomeMinted)
	s.must(bridge.StepSettle, tr.ID, bridge.OutcomeCompleted)
	s.must(bridge.StepSettle, tr.ID, bridge.OutcomeCompleted)

	got := s.transfer(tr.ID)
	if got.Status != bridge.StatusCompleted || got.Minted.String() != "24.975" || got.Fee.String() != "0.025" || !got.Minted.Add(got.Fee).Equal(got.Deposited) {
		t.Fatalf("transfer: %+v", got)
	}
	if grown := s.balance("beta", receiver).Sub(before); grown.String() != "24.975" {
		t.Errorf("the receiver's beta balance grew by %s, want 24.975", grown)
	}
	if bal := s.balance("alpha", alice); !bal.Equal(dec("975")) {
		t.Errorf("the sender's alpha balance = %s", bal)
	}
	books, _ := s.fx.Store.Books(context.Background(), []string{"alpha", "beta"})
	if a, b := books["alpha"], books["beta"]; !a.Balance().Equal(s.balance("alpha", demo.GatewayAccount)) || !b.Balance().Equal(s.balance("beta", demo.GatewayAccount)) ||
		!a.Locked.IsZero() || !b.Reserved.IsZero() || a.Fees.String() != "0.025" {
		t.Errorf("books alpha %+v beta %+v", a, b)
	}
	entries, _ := s.fx.Store.LedgerEntries(context.Background(), tr.ID)
	var kinds []string
	for _, e := range entries {
		kinds = append(kinds, e.Kind+" "+e.Amount.String())
	}
	if strings.Join(kinds, ",") != "deposit 25,mint 24.975,fee 0.025" {
		t.Errorf("ledger: %v", kinds)
	}
	steps := map[string]bool{}
	for _, st := range got.Steps {
		steps[st.Step] = true
	}
	for _, want := range []string{bridge.StepAccept, bridge.StepVerify, bridge.StepReserve, bridge.StepMint, bridge.StepSettle} {
		if !steps[want] {
			t.Errorf("no %s step in %+v", want, got.Steps)
		}
	}
	recs, err := s.fx.Bridge.Reconcile(context.Background())
	if err != nil || len(recs) != 2 || !recs[0].Drift.IsZero() || !recs[1].Drift.IsZero() || recs[0].Error != "" {
		t.Errorf("reconcile: %+v %v", recs, err)
	}
}

func TestSagaRefundsAndRejects(t *testing.T) {
	s := newSaga(t, nil)
	alice := s.fx.Fed.Agent(sender).Account()
	start := s.balance("alpha", alice)

	// A deposit of another amount goes back as it is.
	dep := s.fx.Deposit(t, sender, "alpha", "20")
	tr, _, err := s.submit("25", dep, "")
	if err != nil {
		t.Fatal(err)
	}
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeRefund)
	s.must(bridge.StepReserve, tr.ID, bridge.OutcomeRefund)
	s.must(bridge.StepRefund, tr.ID, bridge.OutcomeRefunded)
	s.must(bridge.StepRefund, tr.ID, bridge.OutcomeRefunded)
	if got := s.transfer(tr.ID); got.Status != bridge.StatusRefunded || got.Refunded.String() != "20" || !strings.Contains(got.Reason, "does not match") {
		t.Errorf("mismatch: %+v", got)
	}

	// A mint the target refuses for good: the reservation is released, the deposit goes back.
	dep = s.fx.Deposit(t, sender, "alpha", "30")
	tr, _, _ = s.submit("30", dep, "")
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified)
	s.must(bridge.StepReserve, tr.ID, bridge.OutcomeReserved)
	s.fx.Fed.TEG("beta").Queue("transfer", demo.Fault{Kind: demo.FaultReject}, 1)
	s.must(bridge.StepMint, tr.ID, bridge.OutcomeRefund)
	s.must(bridge.StepRefund, tr.ID, bridge.OutcomeRefunded)
	books, _ := s.fx.Store.Books(context.Background(), []string{"beta"})
	if !books["beta"].Reserved.IsZero() {
		t.Errorf("a reservation is left: %+v", books["beta"])
	}
	if bal := s.balance("alpha", alice); !bal.Equal(start) {
		t.Errorf("after two refunds the sender has %s, want %s", bal, start)
	}
	if recs, err := s.fx.Bridge.Reconcile(context.Background()); err != nil || !recs[0].Drift.IsZero() || !recs[1].Drift.IsZero() {
		t.Errorf("after refunds the books drift: %+v %v", recs, err)
	}

	// A deposit that is not there: not found, then rejected with nothing taken; the same
	// deposit may be asked again once it exists... under its own ID.
	tr, _, _ = s.submit("5", "tx_alpha_999999", "")
	if _, err := s.run(bridge.StepVerify, tr.ID); bridge.TaskErrorName(err) != bridge.ErrDepositNotFound {
		t.Fatalf("verify of a missing deposit: %v", err)
	}
	s.must(bridge.StepReject, tr.ID, bridge.OutcomeRejected)
	if again, created, err := s.submit("5", "tx_alpha_999999", ""); err != nil || !created || again.Attempt != 2 || again.Status != bridge.StatusPending {
		t.Fatalf("a rejected transfer asked again: %+v %v %v", again, created, err)
	}

	// Not enough liquidity on the target: refunded.
	dep = s.fx.Deposit(t, sender, "alpha", "40")
	tr, _, _ = s.submit("40", dep, "")
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified)
	ctx := context.Background()
	bk, _ := s.fx.Store.Books(ctx, []string{"beta"})
	drain := bk["beta"]
	drain.Reserved = drain.Available().Add(drain.Reserved).Sub(dec("1"))
	if err := s.fx.Store.Commit(ctx, bridge.Change{Transfer: s.transfer(tr.ID), Books: []bridge.Book{drain}}); err != nil {
		t.Fatal(err)
	}
	s.must(bridge.StepReserve, tr.ID, bridge.OutcomeRefund)
	if got := s.transfer(tr.ID); !strings.Contains(got.Reason, "not enough liquidity") {
		t.Errorf("reason %q", got.Reason)
	}
}

// A mint whose outcome is unknown is resolved, never refunded blindly, and never minted
// twice: applied then lost, refused by a 5xx before applying, applied late.
func TestSagaResolvesUnknownMints(t *testing.T) {
	s := newSaga(t, nil)
	for _, fault := range []string{demo.FaultApplyLose, demo.FaultFail, demo.FaultApply5xx} {
		dep := s.fx.Deposit(t, sender, "alpha", "10")
		tr, _, _ := s.submit("10", dep, "")
		s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified)
		s.must(bridge.StepReserve, tr.ID, bridge.OutcomeReserved)
		before := s.balance("beta", receiver)
		// Twice: Go's HTTP client sends a request with an Idempotency-Key once more by
		// itself when a reused connection closes unanswered.
		s.fx.Fed.TEG("beta").Queue("transfer", demo.Fault{Kind: fault}, 2)
		if _, err := s.run(bridge.StepMint, tr.ID); bridge.TaskErrorName(err) != bridge.ErrMintUnknown {
			t.Fatalf("%s: %v, want %s", fault, err, bridge.ErrMintUnknown)
		}
		s.fx.Fed.TEG("beta").ClearFaults()
		s.must(bridge.StepMint, tr.ID, bridge.OutcomeMinted)
		s.must(bridge.StepSettle, tr.ID, bridge.OutcomeCompleted)
		if grown := s.balance("beta", receiver).Sub(before); grown.String() != "9.99" {
			t.Errorf("%s: the receiver got %s, want 9.99 once", fault, grown)
		}
		mints := 0
		for _, tx := range s.fx.Fed.TEG("beta").Transactions() {
			if tx.AttachedMessage == bridge.Message(tr.ID, bridge.StepMint) {
				mints++
			}
		}
		if mints != 1 {
			t.Errorf("%s: %d mints", fault, mints)
		}
	}
}

func TestSagaParksAndOperatorsResolve(t *testing.T) {
	s := newSaga(t, nil)
	ctx := context.Background()
	dep := s.fx.Deposit(t, sender, "alpha", "12")
	tr, _, _ := s.submit("12", dep, "")
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified)
	s.must(bridge.StepReserve, tr.ID, bridge.OutcomeReserved)
	s.fx.Fed.TEG("beta").Queue("transfer", demo.Fault{Kind: demo.FaultApplyLose}, 2)
	_, err := s.run(bridge.StepMint, tr.ID)
	s.fx.Fed.TEG("beta").ClearFaults()
	var te *bridge.TaskError
	if !errors.As(err, &te) || te.Name != bridge.ErrMintUnknown {
		t.Fatal(err)
	}
	if _, err := s.fx.Bridge.Run(ctx, bridge.StepPark, tr.ID, &bridge.Failure{Error: te.Name, Cause: te.Message}); err != nil {
		t.Fatal(err)
	}
	parked, err := s.fx.Bridge.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionListParked})
	if err != nil || !strings.Contains(string(parked.Result), tr.ID) {
		t.Fatalf("list: %s %v", parked.Result, err)
	}
	// Operators resolve it with evidence only: the mint was applied, and is found.
	var mintTx string
	for _, tx := range s.fx.Fed.TEG("beta").Transactions() {
		if tx.AttachedMessage == bridge.Message(tr.ID, bridge.StepMint) {
			mintTx = tx.TransactionID
		}
	}
	bad := bridge.OperatorRequest{Action: bridge.ActionResolve, RequestID: "r1", Operator: "ops", TransferID: tr.ID, Resolution: bridge.ResolveCompleted, TransactionID: "tx_beta_000000"}
	if _, err := s.fx.Bridge.Operate(ctx, bad); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Fatalf("a resolution without evidence: %v", err)
	}
	good := bad
	good.RequestID, good.TransactionID = "r2", mintTx
	res, err := s.fx.Bridge.Operate(ctx, good)
	if err != nil || !res.Applied || s.transfer(tr.ID).Status != bridge.StatusCompleted {
		t.Fatalf("resolve: %+v %v %+v", res, err, s.transfer(tr.ID))
	}
	if res, err := s.fx.Bridge.Operate(ctx, good); err != nil || res.Applied {
		t.Errorf("the same request again: %+v %v", res, err)
	}
	log, _ := s.fx.Store.AuditLog(ctx, 10)
	if len(log) < 3 || log[0].RequestID != "r2" {
		t.Errorf("audit log: %+v", log)
	}
	recs, _ := s.fx.Bridge.Reconcile(ctx)
	for _, r := range recs {
		if !r.Drift.IsZero() || !r.Unclaimed.IsZero() || r.Error != "" {
			t.Errorf("reconcile %+v", r)
		}
	}
}

// A resolution by an operator enters what the token service charged for the payment in
// the ledger, as the saga's own steps do: the books count it (TEGFees), and the ledger
// must say what it was.
func TestOperatorResolutionEntersTheTokenServiceFee(t *testing.T) {
	s := newSaga(t, nil)
	ctx := context.Background()
	tr, _, _ := s.submit("12", s.fx.Deposit(t, sender, "alpha", "12"), "")
	s.must(bridge.StepVerify, tr.ID, bridge.OutcomeVerified)
	s.must(bridge.StepReserve, tr.ID, bridge.OutcomeReserved)
	beta := s.fx.Fed.TEG("beta")
	beta.Fee = dec("0.1")
	beta.Queue("transfer", demo.Fault{Kind: demo.FaultApplyLose}, 2)
	_, err := s.run(bridge.StepMint, tr.ID)
	beta.ClearFaults()
	var te *bridge.TaskError
	if !errors.As(err, &te) || te.Name != bridge.ErrMintUnknown {
		t.Fatal(err)
	}
	if _, err := s.fx.Bridge.Run(ctx, bridge.StepPark, tr.ID, &bridge.Failure{Error: te.Name, Cause: te.Message}); err != nil {
		t.Fatal(err)
	}
	var mintTx string
	for _, tx := range beta.Transactions() {
		if tx.AttachedMessage == bridge.Message(tr.ID, bridge.StepMint) {
			mintTx = tx.TransactionID
		}
	}
	req := bridge.OperatorRequest{Action: bridge.ActionResolve, RequestID: "fee-1", Operator: "ops", TransferID: tr.ID, Resolution: bridge.ResolveCompleted, TransactionID: mintTx}
	if _, err := s.fx.Bridge.Operate(ctx, req); err != nil {
		t.Fatal(err)
	}
	entries, _ := s.fx.Store.LedgerEntries(ctx, tr.ID)
	var kinds []string
	for _, e := range entries {
		kinds = append(kinds, e.Kind+" "+e.Amount.String())
	}
	if !slices.Contains(kinds, bridge.EntryTEGFee+" 0.1") || !slices.Contains(kinds, bridge.EntryMint+" 11.988") {
		t.Errorf("ledger %v: want the mint and the token service's fee of 0.1", kinds)
	}
}

func TestSubmitLimits(t *testing.T) {
	s := newSaga(t, func(o *bridge.Options) {
		id := bridge.LaneID{From: "alpha", To: "beta"}
		l := o.Lanes[id]
		l.Capacity, l.Refill, l.Max = dec("100"), dec("1"), dec("60")
		o.Lanes[id] = l
	})
	ctx := context.Background()
	if _, _, err := s.submit("0.5", "tx-min", ""); federation.ErrorCode(err) != federation.EINVALID || !strings.Contains(err.Error(), "limits") {
		t.Errorf("under min: %v", err)
	}
	if _, _, err := s.submit("61", "tx-max", ""); federation.ErrorCode(err) != federation.EINVALID {
		t.Errorf("over max: %v", err)
	}
	if _, _, err := s.submit("60", "tx-b1", ""); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.submit("50", "tx-b2", "")
	var rl *bridge.RateLimited
	if federation.ErrorCode(err) != federation.ERATELIMITED || !errors.As(err, &rl) || rl.RetryAfter < 9e9 {
		t.Errorf("over the bucket: %v", err)
	}
	if _, err := s.fx.Bridge.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionPause, RequestID: "p1", Operator: "ops", Lane: "alpha->beta"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.submit("5", "tx-p", ""); federation.ErrorCode(err) != federation.ELOCKED {
		t.Errorf("paused: %v", err)
	}
	if _, err := s.fx.Bridge.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionResume, RequestID: "p2", Operator: "ops", Lane: "alpha->beta"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.submit("5", "tx-p", ""); err != nil {
		t.Errorf("resumed: %v", err)
	}
	res, err := s.fx.Bridge.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionSetLimits, RequestID: "l1", Operator: "ops", Lane: "alpha->beta",
		Limits: &bridge.LimitsInput{Max: "5", Min: "2"}})
	if err != nil || !strings.Contains(string(res.Result), `"max":"5"`) {
		t.Fatalf("set limits: %s %v", res.Result, err)
	}
	if _, _, err := s.submit("6", "tx-l", ""); federation.ErrorCode(err) != federation.EINVALID {
		t.Errorf("over the new max: %v", err)
	}
	lanes, err := s.fx.Bridge.Lanes(ctx)
	if err != nil || len(lanes) != 2 || lanes[0].Lane != "alpha->beta" || lanes[0].InFlight != 2 || lanes[0].TargetLiquidity != "10000" {
		t.Errorf("lanes: %+v %v", lanes, err)
	}
	// Who may send: not as another agent; not from a registry that is not the sender's.
	other := s.fx.Fed.Agent("acme/weather-bot")
	_, _, err = s.fx.Bridge.Submit(ctx, bridge.Request{From: other.DID, To: receiver, Amount: "5", Deposit: bridge.Deposit{Registry: "alpha", TransactionID: "x"}},
		federation.Credential{Token: s.fx.Token(t, sender)}, "")
	if federation.ErrorCode(err) != federation.EFORBIDDEN {
		t.Errorf("as another: %v", err)
	}
	from := s.fx.Fed.Agent(sender)
	_, _, err = s.fx.Bridge.Submit(ctx, bridge.Request{From: from.DID, To: receiver, Amount: "5", Deposit: bridge.Deposit{Registry: "beta", TransactionID: "x"}},
		federation.Credential{Token: s.fx.Token(t, sender)}, "")
	if federation.ErrorCode(err) != federation.EUNACCEPTABLE {
		t.Errorf("a deposit on another registry: %v", err)
	}
	_, _, err = s.fx.Bridge.Submit(ctx, bridge.Request{From: from.DID, To: "did:agentvault:nobody", Amount: "5", Deposit: bridge.Deposit{Registry: "alpha", TransactionID: "x"}},
		federation.Credential{Token: s.fx.Token(t, sender)}, "")
	if federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("an unknown receiver: %v", err)
	}
	_, _, err = s.fx.Bridge.Submit(ctx, bridge.Request{From: from.DID, To: "did:agentvault:acme/forecast-pro", Amount: "5", Deposit: bridge.Deposit{Registry: "alpha", TransactionID: "x"}},
		federation.Credential{Token: s.fx.Token(t, sender)}, "")
	if federation.ErrorCode(err) != federation.ENOTFOUND || !strings.Contains(err.Error(), "lane alpha->alpha") {
		t.Errorf("no lane: %v", err)
	}
}
