// Package routing delivers messages between agents of different registries: it checks
// who the sender is and that the federation's policy lets it reach the target, keeps the
// rate limits, delivers each message ID once, and records the delivery and its fee.
//
// Who may send (docs/architecture.md, "Security model"): an agent the directory holds as
// active, whose record names the verified caller (the record's DID or one of the
// identities it declares). The sender's registry is always the directory's: a
// source_registry in the request is only an assertion, checked against it, and never
// signed as given. Nothing is counted against a rate limit or claimed before the sender
// is authorized, so an unregistered caller cannot spend the federation's budget.
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

// Message is what a Deliverer sends. SourceRegistry is always the directory's registry of
// the sender, never the request's.
type Message struct {
	ID, From, To                   string
	SourceRegistry, TargetRegistry string
	Payload                        json.RawMessage
	// Parts says the payload is the list of A2A parts a client sent the gateway
	// (federation.RouteRequest.Parts), to be forwarded as they are.
	Parts      bool
	VerifiedBy federation.Identity
}

// Store is the routing's storage.
type Store interface {
	// Agents returns the records of those DIDs that exist, in one read.
	Agents(ctx context.Context, dids []string) ([]federation.Agent, error)
	// Admit claims a message ID of the sender and counts n messages against the
	// sender's and the global limits of the current minute, all or nothing. A message ID
	// is the sender's own: another sender's use of the same ID is another claim. Errors:
	// ECONFLICT when the sender claimed the ID before (Claim says how); ERATELIMITED when
	// a limit is reached.
	Admit(ctx context.Context, a Admission) (Claim, error)
	// Claim reads the record of a sender's message ID. Errors: ENOTFOUND.
	Claim(ctx context.Context, from, id string) (Claim, error)
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
	// ID, not a full sync). Optional. Errors: ENOTFOUND; EUNAVAILABLE when no registry
	// could be asked, which the route answers as a 502.
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
// EUNAUTHORIZED (no valid credential), EFORBIDDEN (the sender is not an active registered
// agent the credential speaks for, claims another registry, or the policy refuses),
// EINVALID, ETOOLARGE, ENOTFOUND (no such target), ECONFLICT (the sender used the message
// ID for other content), ERATELIMITED, EUNAVAILABLE (the delivery failed). An empty From
// is the verified subject.
//
// The order is the point: decode and validate, verify the credential, read both parties
// in one read, authorize, and only then touch the rate counters and the message claim.
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
	agents, err := r.store.Agents(ctx, []string{req.From, req.To})
	if err != nil {
		return federation.RouteResult{}, fmt.Errorf("route: %w", err)
	}
	sender, target := find(agents, req.From), find(agents, req.To)
	if err := authorizeSender(id, req.From, req.SourceRegistry, sender); err != nil {
		return federation.RouteResult{}, err
	}
	if target, err = r.target(ctx, req.To, target); err != nil {
		return federation.RouteResult{}, err
	}
	if err := r.authorizeRoute(sender, target); err != nil {
		return federation.RouteResult{}, err
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
		return r.duplicate(ctx, req.From, msgID, hash)
	}
	if err != nil {
		return federation.RouteResult{}, err
	}

	dctx, cancel := context.WithTimeout(ctx, r.opts.DeliveryBudget)
	defer cancel()
	resp, derr := r.deliverer.Deliver(dctx, target.Endpoint, Message{
		ID: msgID, From: req.From, To: req.To, SourceRegistry: sender.Registry, TargetRegistry: target.Registry,
		Payload: req.Payload, Parts: req.Parts, VerifiedBy: id,
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

// find returns the record of did among agents, or nil.
func find(agents []federation.Agent, did string) *federation.Agent {
	for i := range agents {
		if agents[i].DID == did {
			return &agents[i]
		}
	}
	return nil
}

// target returns the target's record, looking it up in the registries when the directory
// lacks it or holds it as gone. Errors: ENOTFOUND; EUNAVAILABLE when every registry
// failed to answer (the target may exist: a 502, not a 404).
func (r *Router) target(ctx context.Context, did string, known *federation.Agent) (*federation.Agent, error) {
	if known != nil && known.Status != federation.StatusGone {
		return known, nil
	}
	if r.opts.Lookup != nil {
		a, err := r.opts.Lookup(ctx, did)
		switch code := federation.ErrorCode(err); {
		case err == nil:
			return &a, nil
		case code == federation.EUNAVAILABLE:
			return nil, fmt.Errorf("look up %s: %w", did, err)
		case code != federation.ENOTFOUND:
			r.log.WarnContext(ctx, "targeted lookup failed", "did", did, "error", err.Error())
		}
	}
	return nil, federation.Errorf(federation.ENOTFOUND, "no agent %s in the federation", did)
}

// authorizeSender checks who may send as from: the verified identity must be from itself
// or an identity from's directory record declares, and that record must be active. A
// claimed registry (the request's source_registry) must be the record's. Errors:
// EFORBIDDEN, saying why.
func authorizeSender(id federation.Identity, from, claimedRegistry string, sender *federation.Agent) error {
	bound := id.Subject == from || (sender != nil && slices.Contains(sender.Identities, id.Subject))
	switch {
	case !bound:
		return federation.Errorf(federation.EFORBIDDEN, "%s may not send as %s: the credential must be that agent's own, or an identity its registry card declares", id.Subject, from)
	case sender == nil:
		return federation.Errorf(federation.EFORBIDDEN, "%s is not an agent of any registry in the federation: only registered agents may send", from)
	case sender.Status == federation.StatusGone:
		return federation.Errorf(federation.EFORBIDDEN, "%s may not send: registry %s no longer lists it (status gone)", from, sender.Registry)
	case sender.Status == federation.StatusStale:
		return federation.Errorf(federation.EFORBIDDEN, "%s may not send: registry %s has not been reachable, so its listing cannot be confirmed (status stale)", from, sender.Registry)
	case sender.Status != federation.StatusActive:
		return federation.Errorf(federation.EFORBIDDEN, "%s may not send: its record is %q, not active", from, sender.Status)
	case claimedRegistry != "" && claimedRegistry != sender.Registry:
		return federation.Errorf(federation.EFORBIDDEN, "%s belongs to registry %s, not %s", from, sender.Registry, claimedRegistry)
	}
	return nil
}

// authorizeRoute checks that the policy lets the sender's registry reach the target's.
func (r *Router) authorizeRoute(sender, target *federation.Agent) error {
	if !r.allowed(sender.Registry, target.Registry) {
		return federation.Errorf(federation.EFORBIDDEN, "the federation policy does not let registry %s reach registry %s", sender.Registry, target.Registry)
	}
	return nil
}

func (r *Router) allowed(from, to string) bool {
	if len(r.opts.Allow) == 0 {
		return true
	}
	for _, p := range r.opts.Allow {
		f, t, _ := strings.Cut(p, "->")
		if (f == "*" || f == from) && (t == "*" || t == to) {
			return true
		}
	}
	return false
}

// duplicate answers a repeat of a message ID the sender claimed: the first result for
// the same content, once it is known; ECONFLICT for other content.
func (r *Router) duplicate(ctx context.Context, from, id, hash string) (federation.RouteResult, error) {
	deadline := r.now().Add(r.opts.WaitForDuplicate)
	for {
		c, err := r.store.Claim(ctx, from, id)
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
		// The cause names parser internals (strconv): it goes to the log, not the caller.
		return "", federation.Wrap(federation.EINVALID, err, "payload: it holds a number JSON canonicalization (RFC 8785) cannot represent, or a key twice")
	}
	form := "data"
	if req.Parts {
		form = "parts"
	}
	sum := sha256.Sum256([]byte(req.From + "\x00" + req.To + "\x00" + form + "\x00" + string(payload)))
	return hex.EncodeToString(sum[:]), nil
}

// RetryAfter is the number of seconds until the next minute's limits apply.
func RetryAfter(now time.Time) int {
	return int(now.Truncate(time.Minute).Add(time.Minute).Sub(now).Seconds()) + 1
}
