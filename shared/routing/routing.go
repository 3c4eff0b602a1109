// Package routing delivers messages between agents of different registries: it checks
// who the sender is and that the federation's policy lets it reach the target, keeps the
// rate limits, delivers each message ID once, and records the delivery and its fee.
package routing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Limits and defaults.
const (
	// MaxPayload is the largest payload routed: 1024 KB, the reference's max_message_size_kb.
	MaxPayload = 1024 << 10
	// DeliveryBudget bounds one delivery, well inside API Gateway's 29 s.
	DeliveryBudget   = 10 * time.Second
	defaultAgentRate = 100
	defaultGlobal    = 1000
	defaultFee       = "0.01"
	maxMessageIDLen  = 128
)

// Verifier verifies a caller's credential; *identity.Verifier is one.
type Verifier interface {
	// Verify returns the verified identity. Errors: EUNAUTHORIZED with the reason.
	Verify(ctx context.Context, cred federation.Credential) (federation.Identity, error)
}

// Deliverer sends a message to an agent's A2A endpoint.
type Deliverer interface {
	// Deliver sends m and returns a summary of the target's answer. Errors: EUNAVAILABLE
	// with a caller-safe reason.
	Deliver(ctx context.Context, endpoint string, m Message) (json.RawMessage, error)
}

// Message is what a Deliverer sends.
type Message struct {
	ID, From, To                   string
	SourceRegistry, TargetRegistry string
	Payload                        json.RawMessage
	VerifiedBy                     federation.Identity
}

// Store is the routing's storage.
type Store interface {
	// Agents returns the records of those DIDs that exist, in one read.
	Agents(ctx context.Context, dids []string) ([]federation.Agent, error)
	// Admit claims a message ID and counts n messages against the sender's and the
	// global limits of the current minute, all or nothing. Errors: ECONFLICT when the ID
	// is claimed (Claim says how); ERATELIMITED when a limit is reached.
	Admit(ctx context.Context, a Admission) (Claim, error)
	// Claim reads the record of a message ID. Errors: ENOTFOUND.
	Claim(ctx context.Context, id string) (Claim, error)
	// Complete records a delivery's outcome and, for a delivered one, its fee in the
	// ledger, in one write.
	Complete(ctx context.Context, c Claim) error
}

// Admission is what Admit writes.
type Admission struct {
	MessageID   string
	ContentHash string
	From, To    string
	N           int // messages counted against the limits (a broadcast counts each)
	AgentLimit  int
	GlobalLimit int
	Minute      time.Time
}

// Claim is the record of a message ID.
type Claim struct {
	MessageID      string
	ContentHash    string
	From, To       string
	Status         string // pending, delivered, failed
	TargetRegistry string
	Response       json.RawMessage
	Reason         string
	Fee            string
}

// Claim statuses.
const (
	ClaimPending   = "pending"
	ClaimDelivered = "delivered"
	ClaimFailed    = "failed"
)

// Options configure a Router.
type Options struct {
	Allow      []string // "from->to" registry pairs, "*" for any; empty allows all
	AgentRate  int      // per sender per minute
	GlobalRate int      // per minute
	Fee        string   // decimal
	// Lookup finds an agent the directory lacks in the registries themselves (by its
	// ID, not a full sync). Optional. Errors: ENOTFOUND.
	Lookup func(ctx context.Context, did string) (federation.Agent, error)
	// WaitForDuplicate bounds how long a repeat of a message still being delivered
	// waits for the first delivery's result (default DeliveryBudget).
	WaitForDuplicate time.Duration
	// DeliveryBudget bounds one delivery (default DeliveryBudget).
	DeliveryBudget time.Duration
	// Caveat says what a verified credential does not prove (identity.Caveat: a bare
	// X.509 chain proves no possession of its key); such a credential cannot send.
	Caveat func(federation.Credential, federation.Identity) string
}

// Router routes messages.
type Router struct {
	verifier  Verifier
	store     Store
	deliverer Deliverer
	opts      Options
	fee       decimal.Decimal
	log       *slog.Logger
	now       func() time.Time
}

// New returns a Router.
func New(v Verifier, s Store, d Deliverer, opts Options, log *slog.Logger) (*Router, error) {
	if opts.AgentRate <= 0 {
		opts.AgentRate = defaultAgentRate
	}
	if opts.GlobalRate <= 0 {
		opts.GlobalRate = defaultGlobal
	}
	if opts.Fee == "" {
		opts.Fee = defaultFee
	}
	if opts.DeliveryBudget <= 0 {
		opts.DeliveryBudget = DeliveryBudget
	}
	if opts.WaitForDuplicate <= 0 {
		opts.WaitForDuplicate = opts.DeliveryBudget
	}
	fee, err := decimal.NewFromString(opts.Fee)
	if err != nil || fee.IsNegative() {
		return nil, fmt.Errorf("routing fee %q: want a non-negative decimal", opts.Fee)
	}
	for _, p := range opts.Allow {
		if from, to, ok := strings.Cut(p, "->"); !ok || from == "" || to == "" {
			return nil, fmt.Errorf("policy rule %q: want \"from->to\" with registry IDs or *", p)
		}
	}
	return &Router{verifier: v, store: s, deliverer: d, opts: opts, fee: fee, log: log, now: time.Now}, nil
}

// Route delivers req on behalf of the caller whose credential is cred. Errors:
// EUNAUTHORIZED (no valid credential), EFORBIDDEN (identity or policy), EINVALID,
// ETOOLARGE, ENOTFOUND (no such target), ECONFLICT (the message ID was used for other
// content), ERATELIMITED, EUNAVAILABLE (the delivery failed).
// An empty From is the verified subject.
func (r *Router) Route(ctx context.Context, req federation.RouteRequest, cred federation.Credential) (federation.RouteResult, error) {
	from := req.From
	if from == "" {
		req.From = "-" // checked again once the caller is known
	}
	if err := validate(req); err != nil {
		return federation.RouteResult{}, err
	}
	id, err := r.verify(ctx, cred)
	if err != nil {
		return federation.RouteResult{}, err
	}
	if from == "" {
		req.From = id.Subject
	}
	sender, target, err := r.parties(ctx, req)
	if err != nil {
		return federation.RouteResult{}, err
	}
	if err := r.authorize(id, req, sender, target); err != nil {
		return federation.RouteResult{}, err
	}
	source := req.SourceRegistry
	if sender != nil {
		source = sender.Registry
	}

	hash, err := contentHash(req)
	if err != nil {
		return federation.RouteResult{}, err
	}
	msgID := req.MessageID
	if msgID == "" {
		msgID = uuid.NewString()
	}
	now := r.now()
	claim, err := r.store.Admit(ctx, Admission{
		MessageID: msgID, ContentHash: hash, From: req.From, To: req.To, N: 1,
		AgentLimit: r.opts.AgentRate, GlobalLimit: r.opts.GlobalRate, Minute: now.Truncate(time.Minute),
	})
	if federation.ErrorCode(err) == federation.ECONFLICT {
		return r.duplicate(ctx, msgID, hash)
	}
	if err != nil {
		return federation.RouteResult{}, err
	}

	dctx, cancel := context.WithTimeout(ctx, r.opts.DeliveryBudget)
	defer cancel()
	resp, derr := r.deliverer.Deliver(dctx, target.Endpoint, Message{
		ID: msgID, From: req.From, To: req.To, SourceRegistry: source, TargetRegistry: target.Registry,
		Payload: req.Payload, VerifiedBy: id,
	})
	claim.TargetRegistry = target.Registry
	if derr != nil {
		claim.Status, claim.Reason = ClaimFailed, federation.ErrorMessage(derr)
		if err := r.store.Complete(context.WithoutCancel(ctx), claim); err != nil {
			r.log.ErrorContext(ctx, "record a failed delivery", "message_id", msgID, "error", err.Error())
		}
		r.log.InfoContext(ctx, "delivery failed", "message_id", msgID, "to", req.To, "error", derr.Error())
		return federation.RouteResult{}, federation.Wrap(federation.EUNAVAILABLE, derr, "delivery to "+req.To+" failed: "+federation.ErrorMessage(derr))
	}
	claim.Status, claim.Response, claim.Fee = ClaimDelivered, resp, r.fee.String()
	if err := r.store.Complete(context.WithoutCancel(ctx), claim); err != nil {
		// Delivered but not recorded: say so loudly; the caller still gets its answer.
		r.log.ErrorContext(ctx, "record a delivery", "message_id", msgID, "error", err.Error())
	}
	return result(claim), nil
}

// verify verifies the caller's credential; whatever is wrong with it is EUNAUTHORIZED.
func (r *Router) verify(ctx context.Context, cred federation.Credential) (federation.Identity, error) {
	if cred.Token == "" {
		return federation.Identity{}, federation.Errorf(federation.EUNAUTHORIZED, "no credential: send Authorization: Bearer <JWT-SVID or DID-signed JWT>")
	}
	id, err := r.verifier.Verify(ctx, cred)
	if code := federation.ErrorCode(err); code == federation.EINVALID {
		return id, federation.Wrap(federation.EUNAUTHORIZED, err, "the credential is not valid: "+federation.ErrorMessage(err))
	}
	if err == nil && r.opts.Caveat != nil {
		if c := r.opts.Caveat(cred, id); c != "" {
			return id, federation.Errorf(federation.EUNAUTHORIZED, "%s; present a JWT signed with the SVID's key (x5c header)", c)
		}
	}
	return id, err
}

func validate(req federation.RouteRequest) error {
	switch {
	case req.From == "" || req.To == "":
		return federation.Errorf(federation.EINVALID, "from and to are required")
	case len(req.From) > 512 || len(req.To) > 512:
		return federation.Errorf(federation.EINVALID, "from and to are at most 512 characters")
	case len(req.Payload) == 0 || !json.Valid(req.Payload):
		return federation.Errorf(federation.EINVALID, "payload is required and must be JSON")
	case len(req.Payload) > MaxPayload:
		return federation.Errorf(federation.ETOOLARGE, "the payload is %d bytes; the limit is %d", len(req.Payload), MaxPayload)
	case len(req.MessageID) > maxMessageIDLen || strings.ContainsAny(req.MessageID, "#\x00"):
		return federation.Errorf(federation.EINVALID, "message_id: at most %d characters, no '#'", maxMessageIDLen)
	}
	return nil
}

// parties reads the sender's and the target's records in one read, and looks the target
// up in the registries when the directory lacks it.
func (r *Router) parties(ctx context.Context, req federation.RouteRequest) (sender, target *federation.Agent, err error) {
	agents, err := r.store.Agents(ctx, []string{req.From, req.To})
	if err != nil {
		return nil, nil, fmt.Errorf("route: %w", err)
	}
	for i := range agents {
		switch agents[i].DID {
		case req.From:
			sender = &agents[i]
		case req.To:
			target = &agents[i]
		}
	}
	if target == nil || target.Status == federation.StatusGone {
		if r.opts.Lookup != nil {
			a, err := r.opts.Lookup(ctx, req.To)
			if err == nil {
				return sender, &a, nil
			}
			if federation.ErrorCode(err) != federation.ENOTFOUND {
				r.log.WarnContext(ctx, "targeted lookup failed", "did", req.To, "error", err.Error())
			}
		}
		return nil, nil, federation.Errorf(federation.ENOTFOUND, "no agent %s in the federation", req.To)
	}
	return sender, target, nil
}

// authorize checks that the verified identity speaks for the sender and that the policy
// lets the sender's registry reach the target's.
func (r *Router) authorize(id federation.Identity, req federation.RouteRequest, sender, target *federation.Agent) error {
	bound := id.Subject == req.From
	if sender != nil && slices.Contains(sender.Identities, id.Subject) {
		bound = true
	}
	if !bound {
		return federation.Errorf(federation.EFORBIDDEN, "%s may not send as %s", id.Subject, req.From)
	}
	source := req.SourceRegistry
	if sender != nil {
		if req.SourceRegistry != "" && req.SourceRegistry != sender.Registry {
			return federation.Errorf(federation.EFORBIDDEN, "%s belongs to registry %s, not %s", req.From, sender.Registry, req.SourceRegistry)
		}
		source = sender.Registry
	}
	if !r.allowed(source, target.Registry) {
		from := source
		if from == "" {
			from = "(unknown)"
		}
		return federation.Errorf(federation.EFORBIDDEN, "the federation policy does not let registry %s reach registry %s", from, target.Registry)
	}
	return nil
}

func (r *Router) allowed(from, to string) bool {
	if len(r.opts.Allow) == 0 {
		return true
	}
	for _, p := range r.opts.Allow {
		f, t, _ := strings.Cut(p, "->")
		if (f == "*" || (f == from && from != "")) && (t == "*" || t == to) {
			return true
		}
	}
	return false
}

// duplicate answers a repeat of a claimed message ID: the first result for the same
// content, once it is known; ECONFLICT for other content.
func (r *Router) duplicate(ctx context.Context, id, hash string) (federation.RouteResult, error) {
	deadline := r.now().Add(r.opts.WaitForDuplicate)
	for {
		c, err := r.store.Claim(ctx, id)
		if err != nil {
			return federation.RouteResult{}, fmt.Errorf("route: %w", err)
		}
		if c.ContentHash != hash {
			return federation.RouteResult{}, federation.Errorf(federation.ECONFLICT, "message_id %s was used for another message", id)
		}
		switch c.Status {
		case ClaimDelivered:
			res := result(c)
			res.Duplicate = true
			return res, nil
		case ClaimFailed:
			return federation.RouteResult{}, federation.Errorf(federation.EUNAVAILABLE, "delivery of %s failed: %s", id, c.Reason)
		}
		if r.now().After(deadline) {
			return federation.RouteResult{}, federation.Errorf(federation.ECONFLICT, "message_id %s is still being delivered; retry later", id)
		}
		select {
		case <-ctx.Done():
			return federation.RouteResult{}, fmt.Errorf("route: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func result(c Claim) federation.RouteResult {
	return federation.RouteResult{Status: ClaimDelivered, MessageID: c.MessageID, TargetRegistry: c.TargetRegistry, Response: c.Response, Fee: c.Fee}
}

// contentHash identifies what a message says, so that a repeated message ID can be told
// from a reused one.
func contentHash(req federation.RouteRequest) (string, error) {
	payload, err := jcs.Transform(req.Payload)
	if err != nil {
		return "", federation.Errorf(federation.EINVALID, "payload: %v", err)
	}
	sum := sha256.Sum256([]byte(req.From + "\x00" + req.To + "\x00" + string(payload)))
	return hex.EncodeToString(sum[:]), nil
}

// RetryAfter is the number of seconds until the next minute's limits apply.
func RetryAfter(now time.Time) int {
	return int(now.Truncate(time.Minute).Add(time.Minute).Sub(now).Seconds()) + 1
}
