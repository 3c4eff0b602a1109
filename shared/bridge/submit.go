package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/routing"
	"github.com/federation-gateway/gateway/shared/wait"
)

// Request is the body of POST /api/v1/bridge.
type Request struct {
	From    string  `json:"from"`
	To      string  `json:"to"`
	Amount  string  `json:"amount"`
	Deposit Deposit `json:"deposit"`
}

// Limits of a request's fields.
const (
	maxDIDLen = 512
	maxTxLen  = 128
	maxKeyLen = 128
)

// validate checks the request's form: EINVALID naming what is wrong.
func validate(req Request, key string) error {
	switch {
	case req.From == "" || req.To == "":
		return federation.Errorf(federation.EINVALID, "from and to are required")
	case len(req.From) > maxDIDLen || len(req.To) > maxDIDLen:
		return federation.Errorf(federation.EINVALID, "from and to are at most %d characters", maxDIDLen)
	case req.From == req.To:
		return federation.Errorf(federation.EINVALID, "from and to are the same agent")
	case req.Deposit.Registry == "" || req.Deposit.TransactionID == "":
		return federation.Errorf(federation.EINVALID, "deposit.registry and deposit.transaction_id are required")
	case len(req.Deposit.Registry) > 63 || !printable(req.Deposit.Registry):
		return federation.Errorf(federation.EINVALID, "deposit.registry is not a registry ID")
	case len(req.Deposit.TransactionID) > maxTxLen || !printable(req.Deposit.TransactionID):
		return federation.Errorf(federation.EINVALID, "deposit.transaction_id: at most %d printable characters", maxTxLen)
	case len(key) > maxKeyLen || !printable(key):
		return federation.Errorf(federation.EINVALID, "Idempotency-Key: at most %d printable characters", maxKeyLen)
	}
	_, err := ParseAmount("amount", req.Amount)
	return err
}

// printable reports whether s is printable ASCII without '#', the table's key separator.
func printable(s string) bool {
	for _, c := range s {
		if c < 0x21 || c > 0x7e || c == '#' {
			return false
		}
	}
	return true
}

// requestHash identifies what a request asks, so that a repeat can be told from a reuse.
func requestHash(req Request, sender string) string {
	amount, _ := ParseAmount("amount", req.Amount)
	sum := sha256.Sum256([]byte(strings.Join([]string{sender, req.From, req.To, amount.String(), req.Deposit.Registry, req.Deposit.TransactionID}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// Submit accepts a transfer of req on behalf of the caller whose credential is cred, and
// starts its saga. key is the request's Idempotency-Key, "" for none. A repeated request
// (the same key, or the same deposit asked the same way) answers the transfer it made:
// created is false then. A rejected transfer (nothing was taken) may be asked again and
// runs once more.
//
// Errors: EINVALID (the body or the amount), EUNAUTHORIZED, EFORBIDDEN (the credential does
// not prove from), ENOTFOUND (no such receiver, no such lane), EUNACCEPTABLE (the deposit
// is not on the sender's registry), ECONFLICT (the deposit or the key backs another
// request), ELOCKED (the lane is paused), ERATELIMITED wrapping *RateLimited.
func (b *Bridge) Submit(ctx context.Context, req Request, cred federation.Credential, key string) (t Transfer, created bool, err error) {
	if err := validate(req, key); err != nil {
		return Transfer{}, false, err
	}
	id, err := b.verify(ctx, cred)
	if err != nil {
		return Transfer{}, false, err
	}
	for attempt := 0; ; attempt++ {
		t, created, err = b.submit(ctx, req, id, key)
		var c *Conflict
		if !errors.As(err, &c) || attempt >= 8 {
			break
		}
		// Another request changed the lane or made the transfer: read again.
		if err := wait.Sleep(ctx, time.Duration(5+attempt*attempt*5)*time.Millisecond); err != nil {
			return Transfer{}, false, err
		}
	}
	var c *Conflict
	if errors.As(err, &c) {
		return Transfer{}, false, federation.Wrap(federation.EUNAVAILABLE, err, "the lane is busy; try again")
	}
	return t, created, err
}

func (b *Bridge) submit(ctx context.Context, req Request, id federation.Identity, key string) (Transfer, bool, error) {
	amount, _ := ParseAmount("amount", req.Amount)
	transferID := TransferID(req.Deposit)
	hash := requestHash(req, id.Subject)
	snap, err := b.store.Snapshot(ctx, []string{req.From, req.To}, transferID, b.LaneIDs(), id.Subject, key)
	if err != nil {
		return Transfer{}, false, fmt.Errorf("bridge: %w", err)
	}
	if snap.KeyTransfer != "" {
		if snap.KeyHash != hash {
			return Transfer{}, false, federation.Errorf(federation.ECONFLICT, "Idempotency-Key %q was used for another request", key)
		}
		if snap.Transfer != nil && snap.KeyTransfer == transferID && snap.Transfer.Status != StatusRejected {
			return *snap.Transfer, false, nil
		}
		if snap.KeyTransfer != transferID {
			t, err := b.store.Transfer(ctx, snap.KeyTransfer)
			return t, false, err
		}
	}

	// Who may send is routing's rule: the credential is from's own, or an identity its
	// record declares, and from is an active agent in the directory.
	var sender *federation.Agent
	if a, ok := snap.Agents[req.From]; ok {
		sender = &a
	}
	if err := routing.AuthorizeSender(id, req.From, "", sender); err != nil {
		return Transfer{}, false, err
	}
	from := *sender
	to, ok := snap.Agents[req.To]
	if !ok || to.Status != federation.StatusActive {
		return Transfer{}, false, federation.Errorf(federation.ENOTFOUND, "no active agent %s in the federation", req.To)
	}
	if req.Deposit.Registry != from.Registry {
		return Transfer{}, false, federation.Errorf(federation.EUNACCEPTABLE,
			"the deposit is on registry %s, but %s belongs to registry %s: deposit on your own registry", req.Deposit.Registry, req.From, from.Registry)
	}
	laneID := LaneID{From: from.Registry, To: to.Registry}
	var stored *Lane
	if l, ok := snap.Lanes[laneID]; ok {
		stored = &l
	}
	lane, ok := b.lane(laneID, stored)
	if !ok {
		return Transfer{}, false, federation.Errorf(federation.ENOTFOUND, "no bridge lane %s", laneID)
	}

	attempt := 1
	var version int64
	var prior []StepRecord
	if t := snap.Transfer; t != nil {
		if t.RequestHash != hash {
			return Transfer{}, false, federation.Errorf(federation.ECONFLICT, "deposit %s on %s already backs transfer %s",
				req.Deposit.TransactionID, req.Deposit.Registry, t.ID)
		}
		if t.Status != StatusRejected {
			if t.Status == StatusPending {
				b.start(ctx, t) // a repeat restarts a start that failed; starting twice is a no-op
			}
			return *t, false, nil
		}
		attempt, version, prior = t.Attempt+1, t.Version, t.Steps
	}

	if lane.Paused {
		return Transfer{}, false, federation.Errorf(federation.ELOCKED, "bridge lane %s is paused", laneID)
	}
	if amount.LessThan(lane.Limits.Min) || amount.GreaterThan(lane.Limits.Max) {
		return Transfer{}, false, federation.Errorf(federation.EINVALID, "amount %s is outside lane %s's limits: %s to %s",
			amount, laneID, lane.Limits.Min, lane.Limits.Max)
	}
	now := b.now()
	if ok, wait := lane.Take(now, amount); !ok {
		return Transfer{}, false, federation.Wrap(federation.ERATELIMITED, &RateLimited{RetryAfter: wait},
			fmt.Sprintf("bridge lane %s is at its rate limit; retry in %s", laneID, wait))
	}

	t := Transfer{
		ID: transferID, Attempt: attempt, Status: StatusPending, From: req.From, To: req.To, Lane: laneID,
		Sender: id.Subject, Amount: amount, Deposit: req.Deposit, SenderAccount: req.From, ReceiverAccount: req.To,
		IdempotencyKey: key, RequestHash: hash, FeeRate: lane.Limits.FeeRate, CreatedAt: now, Version: version, Steps: prior,
	}
	t.ExecutionARN = b.executions.ARN(executionName(t))
	t.record(StepAccept, StatusPending, fmt.Sprintf("attempt %d", attempt), now)
	if err := b.store.Accept(ctx, Acceptance{Transfer: t, Lane: lane, Key: key}); err != nil {
		return Transfer{}, false, err
	}
	t.Version++
	b.start(ctx, &t)
	return t, true, nil
}

// executionName is the name of a transfer attempt's execution: a repeat cannot start a
// second one.
func executionName(t Transfer) string { return t.ID + "-" + strconv.Itoa(t.Attempt) }

// start starts the transfer's execution. A failure is logged, not returned: the transfer
// is recorded, and reconciliation starts a pending transfer whose execution never did.
// The input carries the correlation ID of the request that started it (package
// correlation), so the execution can be found from the caller's answer and logs.
func (b *Bridge) start(ctx context.Context, t *Transfer) {
	in := map[string]string{"transfer_id": t.ID}
	if id := correlation.Value(ctx); id != "" {
		in["correlation_id"] = id
	}
	input, _ := json.Marshal(in) // strings only: it cannot fail
	if _, err := b.executions.Start(ctx, executionName(*t), input); err != nil {
		b.log.ErrorContext(ctx, "start the bridge saga", "transfer", t.ID, "error", err.Error())
	}
}

// verify verifies the caller's credential; whatever is wrong with it is EUNAUTHORIZED.
func (b *Bridge) verify(ctx context.Context, cred federation.Credential) (federation.Identity, error) {
	if cred.Token == "" {
		return federation.Identity{}, federation.Errorf(federation.EUNAUTHORIZED, "no credential: send Authorization: Bearer <JWT-SVID or DID-signed JWT>")
	}
	id, err := b.verifier.Verify(ctx, cred)
	if federation.ErrorCode(err) == federation.EINVALID {
		return id, federation.Wrap(federation.EUNAUTHORIZED, err, "the credential is not valid: "+federation.ErrorMessage(err))
	}
	return id, err
}

// Get returns a transfer to a caller who may see it: its sender, the agents it moves
// value between (or an identity their directory records declare), or an operator. To
// anyone else it does not exist. Errors: EUNAUTHORIZED, ENOTFOUND, EINVALID.
func (b *Bridge) Get(ctx context.Context, transferID string, cred federation.Credential) (Transfer, error) {
	if len(transferID) > 64 || !printable(transferID) {
		return Transfer{}, federation.Errorf(federation.EINVALID, "%q is not a transfer ID", clip(transferID))
	}
	id, err := b.verify(ctx, cred)
	if err != nil {
		return Transfer{}, err
	}
	t, err := b.store.Transfer(ctx, transferID)
	if err != nil {
		return Transfer{}, err
	}
	if s := id.Subject; s == t.Sender || s == t.From || s == t.To || b.isOperator(s) {
		return t, nil
	}
	snap, err := b.store.Snapshot(ctx, []string{t.From, t.To}, "", nil, "", "")
	if err != nil {
		return Transfer{}, fmt.Errorf("bridge: %w", err)
	}
	for _, a := range snap.Agents {
		if slices.Contains(a.Identities, id.Subject) {
			return t, nil
		}
	}
	return Transfer{}, federation.Errorf(federation.ENOTFOUND, "no transfer %s", transferID)
}
