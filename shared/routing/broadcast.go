package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Broadcast limits.
const (
	// MaxRecipients bounds one broadcast: past it the criteria must be narrower.
	MaxRecipients = 200
	// broadcastConcurrency bounds the deliveries in flight.
	broadcastConcurrency = 8
)

// Discoverer finds agents; *directory.Discoverer is one.
type Discoverer interface {
	Discover(ctx context.Context, q directory.Query) (directory.Page, error)
}

// BroadcastRequest asks for a payload to be delivered to every agent matching criteria.
type BroadcastRequest struct {
	From     string          `json:"from"`
	Payload  json.RawMessage `json:"payload"`
	Criteria directory.Query `json:"criteria"`
}

// BroadcastResult says what a broadcast did.
type BroadcastResult struct {
	BroadcastID string           `json:"broadcast_id"`
	Recipients  int              `json:"recipients"`
	Delivered   int              `json:"delivered"`
	Failed      []FailedDelivery `json:"failed"`
	Fee         string           `json:"fee"`
}

// FailedDelivery is one recipient a broadcast did not reach.
type FailedDelivery struct {
	DID    string `json:"did"`
	Reason string `json:"reason"`
}

// Broadcast delivers req's payload to every active agent that matches its criteria but
// the sender, with bounded concurrency. Each recipient counts against the sender's rate
// limit. Errors: as Route, and EINVALID when the criteria match more than MaxRecipients.
func (r *Router) Broadcast(ctx context.Context, d Discoverer, req BroadcastRequest, cred federation.Credential) (BroadcastResult, error) {
	if err := validate(federation.RouteRequest{From: req.From, To: "*", Payload: req.Payload}); err != nil {
		return BroadcastResult{}, err
	}
	id, err := r.verify(ctx, cred)
	if err != nil {
		return BroadcastResult{}, err
	}
	agents, err := r.store.Agents(ctx, []string{req.From})
	if err != nil {
		return BroadcastResult{}, fmt.Errorf("broadcast: %w", err)
	}
	var sender *federation.Agent
	if len(agents) == 1 {
		sender = &agents[0]
	}

	q := req.Criteria
	q.Status, q.Limit, q.Cursor = federation.StatusActive, directory.MaxLimit, ""
	var targets []federation.Agent
	for {
		page, err := d.Discover(ctx, q)
		if err != nil {
			return BroadcastResult{}, err
		}
		for _, a := range page.Results {
			if a.DID != req.From {
				targets = append(targets, a)
			}
		}
		if len(targets) > MaxRecipients {
			return BroadcastResult{}, federation.Errorf(federation.EINVALID, "the criteria match more than %d agents; narrow them", MaxRecipients)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	// Every recipient must be reachable under the policy, as a routed message would be.
	var allowed []federation.Agent
	res := BroadcastResult{BroadcastID: uuid.NewString(), Failed: []FailedDelivery{}, Fee: "0"}
	for i := range targets {
		if err := r.authorize(id, federation.RouteRequest{From: req.From, To: targets[i].DID}, sender, &targets[i]); err != nil {
			res.Failed = append(res.Failed, FailedDelivery{DID: targets[i].DID, Reason: federation.ErrorMessage(err)})
			continue
		}
		allowed = append(allowed, targets[i])
	}
	res.Recipients = len(targets)
	if len(allowed) == 0 {
		return res, nil
	}
	hash, err := contentHash(federation.RouteRequest{From: req.From, To: res.BroadcastID, Payload: req.Payload})
	if err != nil {
		return BroadcastResult{}, err
	}
	now := r.now()
	claim, err := r.store.Admit(ctx, Admission{
		MessageID: res.BroadcastID, ContentHash: hash, From: req.From, To: "broadcast", N: len(allowed),
		AgentLimit: r.opts.AgentRate, GlobalLimit: r.opts.GlobalRate, Minute: now.Truncate(time.Minute),
	})
	if err != nil {
		return BroadcastResult{}, err
	}

	source := ""
	if sender != nil {
		source = sender.Registry
	}
	var mu sync.Mutex
	sem := make(chan struct{}, broadcastConcurrency)
	var wg sync.WaitGroup
	for _, t := range allowed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dctx, cancel := context.WithTimeout(ctx, r.opts.DeliveryBudget)
			defer cancel()
			_, err := r.deliverer.Deliver(dctx, t.Endpoint, Message{
				ID: res.BroadcastID + ":" + t.DID, From: req.From, To: t.DID, SourceRegistry: source, TargetRegistry: t.Registry,
				Payload: req.Payload, VerifiedBy: id,
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed = append(res.Failed, FailedDelivery{DID: t.DID, Reason: federation.ErrorMessage(err)})
				return
			}
			res.Delivered++
		}()
	}
	wg.Wait()
	res.Fee = r.fee.Mul(decimal.NewFromInt(int64(res.Delivered))).String()
	claim.Status, claim.Fee, claim.TargetRegistry = ClaimDelivered, res.Fee, "*"
	claim.Response, _ = json.Marshal(map[string]int{"recipients": res.Recipients, "delivered": res.Delivered})
	if res.Delivered == 0 {
		claim.Status, claim.Fee, claim.Reason = ClaimFailed, "", "no recipient was reached"
	}
	if err := r.store.Complete(context.WithoutCancel(ctx), claim); err != nil {
		r.log.ErrorContext(ctx, "record a broadcast", "broadcast_id", res.BroadcastID, "error", err.Error())
	}
	return res, nil
}
