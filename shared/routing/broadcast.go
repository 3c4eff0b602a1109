package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/metrics"
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

// BroadcastRequest asks for a payload to be delivered to every active agent that matches
// Criteria, or to every active agent when All is set: one of the two, never neither, so
// that a forgotten or misspelt filter never reaches the whole federation.
type BroadcastRequest struct {
	From     string          `json:"from"`
	Payload  json.RawMessage `json:"payload"`
	Criteria Criteria        `json:"criteria"`
	All      bool            `json:"all"`
}

// Criteria are a broadcast's filters: discovery's, every one given must match.
type Criteria struct {
	ServiceType string `json:"service_type,omitempty"`
	// Capabilities is one capability or a list of them, as discovery's repeated
	// capability parameter.
	Capabilities Strings `json:"capability,omitempty"`
	Tag          string  `json:"tag,omitempty"`
	Registry     string  `json:"registry,omitempty"`
	Text         string  `json:"q,omitempty"`
}

// Empty reports whether c filters nothing.
func (c Criteria) Empty() bool {
	return c.ServiceType == "" && len(c.Capabilities) == 0 && c.Tag == "" && c.Registry == "" && c.Text == ""
}

// Strings is a list of strings that JSON may also give as one string.
type Strings []string

// UnmarshalJSON accepts "x", ["x", "y"] or null. Errors: EINVALID.
func (s *Strings) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = Strings{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return federation.Errorf(federation.EINVALID, "criteria.capability: want a string or a list of strings")
	}
	*s = many
	return nil
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
// limit. The sender is authorized as for Route before any recipient is searched for: a
// caller cannot probe the directory, or reach anyone, as someone else. Errors: as Route,
// and EINVALID when the request names no criteria and not "all", or when the criteria
// match more than MaxRecipients.
func (r *Router) Broadcast(ctx context.Context, d Discoverer, req BroadcastRequest, cred federation.Credential) (BroadcastResult, error) {
	from := req.From
	if from == "" {
		req.From = "-" // checked again once the caller is known
	}
	if err := validate(federation.RouteRequest{From: req.From, To: "*", Payload: req.Payload}); err != nil {
		return BroadcastResult{}, err
	}
	switch {
	case req.All && !req.Criteria.Empty():
		return BroadcastResult{}, federation.Errorf(federation.EINVALID, `"all": true reaches every agent: give it or criteria, not both`)
	case !req.All && req.Criteria.Empty():
		return BroadcastResult{}, federation.Errorf(federation.EINVALID,
			`name the recipients in criteria (service_type, capability, tag, registry, q), or send "all": true to reach every agent`)
	}
	c, err := r.verify(ctx, cred)
	if err != nil {
		return BroadcastResult{}, err
	}
	if from == "" {
		req.From = c.id.Subject
	}
	// A broadcast is no critical path: its credential is claimed at once, alone, before
	// anything is searched for.
	if err := r.claimReplay(ctx, c); err != nil {
		return BroadcastResult{}, err
	}
	return r.broadcast(ctx, d, req, c)
}

// broadcast is Broadcast once the caller is verified.
func (r *Router) broadcast(ctx context.Context, d Discoverer, req BroadcastRequest, c *caller) (BroadcastResult, error) {
	// The sender's record is read past the cache: its recipients are searched for only
	// once it is authorized on a fresh record.
	agents, err := r.store.Agents(ctx, []string{req.From})
	if err != nil {
		return BroadcastResult{}, fmt.Errorf("broadcast: %w", err)
	}
	sender := find(agents, req.From)
	if err := AuthorizeSender(c.id, req.From, "", sender); err != nil {
		return BroadcastResult{}, err
	}

	targets, err := recipients(ctx, d, req)
	if err != nil {
		return BroadcastResult{}, err
	}
	// Every recipient must be reachable under the policy, as a routed message would be.
	var allowed []federation.Agent
	res := BroadcastResult{BroadcastID: uuid.NewString(), Failed: []FailedDelivery{}, Fee: "0"}
	for i := range targets {
		if err := r.authorizeRoute(sender, &targets[i]); err != nil {
			res.Failed = append(res.Failed, FailedDelivery{DID: targets[i].DID, Reason: federation.ErrorMessage(err)})
			continue
		}
		allowed = append(allowed, targets[i])
	}
	res.Recipients = len(targets)
	if len(allowed) == 0 {
		r.observeBroadcast(ctx, res)
		return res, nil
	}
	hash, err := contentHash(federation.RouteRequest{From: req.From, To: res.BroadcastID, Payload: req.Payload})
	if err != nil {
		return BroadcastResult{}, err
	}
	claim, err := r.admit(ctx, c, Admission{
		MessageID: res.BroadcastID, ContentHash: hash, From: req.From, To: "broadcast", N: len(allowed),
		Sender: assertion(c.id, sender), AgentLimit: r.opts.AgentRate, Minute: r.now().Truncate(time.Minute),
	})
	if errors.Is(err, ErrSenderChanged) {
		return BroadcastResult{}, federation.Wrap(federation.EUNAVAILABLE, err, "the sender's directory record changed while the broadcast was prepared; try again")
	}
	if err != nil {
		return BroadcastResult{}, err
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
				ID: res.BroadcastID + ":" + t.DID, From: req.From, To: t.DID, SourceRegistry: sender.Registry, TargetRegistry: t.Registry,
				Payload: req.Payload, VerifiedBy: c.id,
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
	r.observeBroadcast(ctx, res)
	return res, nil
}

// observeBroadcast records a broadcast's fan-out and its deliveries by outcome.
func (r *Router) observeBroadcast(ctx context.Context, res BroadcastResult) {
	r.opts.Metrics.Emit(ctx, nil, metrics.Count(metrics.BroadcastRecipients, res.Recipients))
	r.opts.Metrics.Emit(ctx, []metrics.Dim{{Name: metrics.DimOutcome, Value: OutcomeDelivered}}, metrics.Count(metrics.BroadcastDeliveries, res.Delivered))
	r.opts.Metrics.Emit(ctx, []metrics.Dim{{Name: metrics.DimOutcome, Value: "failed"}}, metrics.Count(metrics.BroadcastDeliveries, len(res.Failed)))
}

// recipients are the active agents that match req, but the sender. Errors: EINVALID when
// they are more than MaxRecipients; the Discoverer's.
func recipients(ctx context.Context, d Discoverer, req BroadcastRequest) ([]federation.Agent, error) {
	c := req.Criteria
	q := directory.Query{
		ServiceType: c.ServiceType, Capabilities: c.Capabilities, Tag: c.Tag, Registry: c.Registry, Text: c.Text,
		Status: federation.StatusActive, Limit: directory.MaxLimit,
	}
	var targets []federation.Agent
	for {
		page, err := d.Discover(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, a := range page.Results {
			if a.DID != req.From {
				targets = append(targets, a)
			}
		}
		if len(targets) > MaxRecipients {
			return nil, federation.Errorf(federation.EINVALID, "the criteria match more than %d agents; narrow them", MaxRecipients)
		}
		if page.NextCursor == "" {
			return targets, nil
		}
		q.Cursor = page.NextCursor
	}
}
