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
//
// What a routed message costs the table (docs/architecture.md, "Hot keys and scaling
// limits"): one transaction before the delivery and one after it. The first claims the
// credential's jti and the message ID, counts the rate limits, and asserts that the
// sender's directory record still is what the Router authorized (active, its registry,
// the identity bound), so that the parties' records can come from a short-lived cache
// without a changed record ever letting a message through. The global limit is counted
// in shards (GlobalShards), so that no single item bounds it.
package routing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/metrics"
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
	// VerifyUnclaimed returns the verified identity and the replay claim its credential
	// needs, unmade: the Router makes it in the transaction that admits the message, or
	// alone when the request admits none. Errors: EUNAUTHORIZED with the reason.
	VerifyUnclaimed(ctx context.Context, cred federation.Credential) (federation.Identity, identity.Replay, error)
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
	// Admit admits a message, all or nothing, in one write: it claims the credential's
	// replay key (when a.Replay has one), asserts that the sender's directory record is
	// as a.Sender says, claims the sender's message ID, and counts a.N messages against
	// the sender's limit and against one shard of the global limit, of the current
	// minute. A message ID is the sender's own: another sender's use of the same ID is
	// another claim. A failed delivery's claim may be taken again. Errors wrap, in this
	// order of precedence, ErrReplayed (EUNAUTHORIZED), ErrSenderChanged (EFORBIDDEN),
	// ErrClaimed (ECONFLICT), ErrAgentLimit or ErrShardFull (ERATELIMITED); EUNAVAILABLE
	// when the table is busy.
	Admit(ctx context.Context, a Admission) (Claim, error)
	// ClaimReplay claims a credential's replay key alone, for a request that admits no
	// message. Errors: ErrReplayed (EUNAUTHORIZED).
	ClaimReplay(ctx context.Context, r identity.Replay) error
	// Claim reads the record of a sender's message ID. Errors: ENOTFOUND.
	Claim(ctx context.Context, from, id string) (Claim, error)
	// Complete records a delivery's outcome and, for a delivered one, its fee in the
	// ledger, in one write.
	Complete(ctx context.Context, c Claim) error
}

// The causes a Store's Admit and ClaimReplay wrap in their errors, so that the Router
// knows which of the admission's conditions failed.
var (
	ErrReplayed      = errors.New("the credential's jti is claimed")
	ErrSenderChanged = errors.New("the sender's directory record is not as asserted")
	ErrClaimed       = errors.New("the sender's message ID is claimed")
	ErrAgentLimit    = errors.New("the sender's limit of the minute is reached")
	ErrShardFull     = errors.New("the shard of the global limit is full")
)

// Admission is what Admit writes.
type Admission struct {
	MessageID   string
	ContentHash string
	From, To    string
	N           int // messages counted against the limits (a broadcast counts each)
	// Replay is the credential's replay claim, made in the same write; zero for none.
	Replay identity.Replay
	// Sender is what the write asserts of the sender's directory record.
	Sender     SenderAssertion
	AgentLimit int
	// GlobalShard is the shard of the global counter that counts the messages, and
	// GlobalShardLimit that shard's part of the global limit.
	GlobalShard      int
	GlobalShardLimit int
	Minute           time.Time
}

// SenderAssertion is what an admission asserts of the sender's directory record, in its
// own write: the record is active and of Registry and, when Identity is set (the caller
// is not the sender's own DID), declares Identity.
type SenderAssertion struct {
	Registry string
	Identity string
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
	// GlobalShards is the number of shards the global limit is counted in (default
	// GlobalShards(GlobalRate)).
	GlobalShards int
	Fee          string // decimal
	// Lookup finds an agent the directory lacks in the registries themselves (by its
	// ID, not a full sync). Optional. Errors: ENOTFOUND; EUNAVAILABLE when no registry
	// could be asked, which the route answers as a 502.
	Lookup func(ctx context.Context, did string) (federation.Agent, error)
	// WaitForDuplicate bounds how long a repeat of a message still being delivered
	// waits for the first delivery's result (default DeliveryBudget).
	WaitForDuplicate time.Duration
	// DeliveryBudget bounds one delivery (default DeliveryBudget).
	DeliveryBudget time.Duration
	// DirectoryCacheTTL is how long the parties' directory records are reused (default
	// DefaultDirectoryCacheTTL; negative: never). The sender's is asserted again by every
	// admission; the target's is used as cached, and dropped when a delivery fails.
	DirectoryCacheTTL time.Duration
	// Caveat says what a verified credential does not prove (identity.Caveat: a bare
	// X.509 chain proves no possession of its key); such a credential cannot send.
	Caveat func(federation.Credential, federation.Identity) string
	// Clock returns the current time, which says the minute the rate limits count in;
	// nil means time.Now.
	Clock func() time.Time
	// Metrics receives one observation per routed message (RoutedMessages and its
	// latencies, by outcome) and per broadcast; nil records none.
	Metrics *metrics.Recorder
}

// DefaultDirectoryCacheTTL is how long a Router reuses a party's directory record: half
// the default sync period, so that a target's change reaches routing at most that much
// later than it reaches the directory.
const DefaultDirectoryCacheTTL = 30 * time.Second

// Router routes messages.
type Router struct {
	verifier  Verifier
	store     Store
	deliverer Deliverer
	opts      Options
	fee       decimal.Decimal
	log       *slog.Logger
	now       func() time.Time
	cache     *directoryCache
	global    *shards
}

// New returns a Router.
func New(v Verifier, s Store, d Deliverer, opts Options, log *slog.Logger) (*Router, error) {
	if opts.AgentRate <= 0 {
		opts.AgentRate = defaultAgentRate
	}
	if opts.GlobalRate <= 0 {
		opts.GlobalRate = defaultGlobal
	}
	if opts.GlobalShards <= 0 {
		opts.GlobalShards = GlobalShards(opts.GlobalRate)
	}
	if opts.GlobalShards > opts.GlobalRate {
		return nil, fmt.Errorf("%d shards of a global limit of %d: want at most one shard per message", opts.GlobalShards, opts.GlobalRate)
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
	if opts.DirectoryCacheTTL == 0 {
		opts.DirectoryCacheTTL = DefaultDirectoryCacheTTL
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
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	r := &Router{verifier: v, store: s, deliverer: d, opts: opts, fee: fee, log: log, now: opts.Clock}
	r.cache = newDirectoryCache(opts.DirectoryCacheTTL, opts.Clock)
	r.global = newShards(opts.GlobalRate, opts.GlobalShards)
	return r, nil
}

// Route delivers req on behalf of the caller whose credential is cred. Errors:
// EUNAUTHORIZED (no valid credential, or one used before), EFORBIDDEN (the sender is not
// an active registered agent the credential speaks for, claims another registry, or the
// policy refuses), EINVALID, ETOOLARGE, ENOTFOUND (no such target), ECONFLICT (the sender
// used the message ID for other content), ERATELIMITED, EUNAVAILABLE (the delivery
// failed). An empty From is the verified subject.
//
// The order is the point: decode and validate, verify the credential (CPU only, unless a
// did:web document or a bundle must be fetched), find both parties (in the cache, else
// in one read), authorize, and only then admit: one transaction that claims the jti and
// the message ID, counts the limits and asserts the sender's record, so that nothing is
// counted for a caller the directory does not hold as an active sender.
func (r *Router) Route(ctx context.Context, req federation.RouteRequest, cred federation.Credential) (res federation.RouteResult, err error) {
	start := time.Now()
	obs := &observation{}
	defer func() { r.observe(ctx, start, obs, res, err) }()
	from := req.From
	if from == "" {
		req.From = "-" // checked again once the caller is known
	}
	if err := validate(req); err != nil {
		return federation.RouteResult{}, err
	}
	c, err := r.verify(ctx, cred)
	if err != nil {
		return federation.RouteResult{}, err
	}
	if from == "" {
		req.From = c.id.Subject
	}
	res, err = r.route(ctx, req, c, obs)
	if err := r.settle(ctx, c, err); err != nil {
		return federation.RouteResult{}, err
	}
	return res, nil
}

// route is Route once the caller is verified.
func (r *Router) route(ctx context.Context, req federation.RouteRequest, c *caller, obs *observation) (federation.RouteResult, error) {
	sender, target, cached, err := r.parties(ctx, req.From, req.To)
	if err != nil {
		return federation.RouteResult{}, err
	}
	if err := AuthorizeSender(c.id, req.From, req.SourceRegistry, sender); err != nil {
		if !cached {
			return federation.RouteResult{}, err
		}
		// A refusal is never for a record the cache kept: read it again.
		if sender, err = r.refreshSender(ctx, c, req.From, req.SourceRegistry); err != nil {
			return federation.RouteResult{}, err
		}
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
	adm := Admission{
		MessageID: msgID, ContentHash: hash, From: req.From, To: req.To, N: 1,
		Replay: c.replay, Sender: assertion(c.id, sender), AgentLimit: r.opts.AgentRate, Minute: r.now().Truncate(time.Minute),
	}
	claim, sender, err := r.admitMessage(ctx, c, adm, req.SourceRegistry, sender, target)
	if errors.Is(err, ErrClaimed) {
		if err := r.claimReplay(ctx, c); err != nil {
			return federation.RouteResult{}, err
		}
		return r.duplicate(ctx, req.From, msgID, hash)
	}
	if err != nil {
		return federation.RouteResult{}, err
	}

	dctx, cancel := context.WithTimeout(ctx, r.opts.DeliveryBudget)
	defer cancel()
	delivering := time.Now()
	resp, derr := r.deliverer.Deliver(dctx, target.Endpoint, Message{
		ID: msgID, From: req.From, To: req.To, SourceRegistry: sender.Registry, TargetRegistry: target.Registry,
		Payload: req.Payload, Parts: req.Parts, VerifiedBy: c.id,
	})
	obs.delivered, obs.delivery = true, time.Since(delivering)
	claim.TargetRegistry = target.Registry
	if derr != nil {
		// The endpoint may have moved: the next message reads the target again.
		r.cache.drop(req.To)
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

// admitMessage admits a routed message. A sender's record that is no longer what the
// admission asserted (the cache kept an older one) is read again and authorized anew,
// and the admission tried once more with it; it returns the sender as admitted.
func (r *Router) admitMessage(ctx context.Context, c *caller, adm Admission, claimedRegistry string, sender, target *federation.Agent) (Claim, *federation.Agent, error) {
	claim, err := r.admit(ctx, c, adm)
	if !errors.Is(err, ErrSenderChanged) {
		return claim, sender, err
	}
	if sender, err = r.refreshSender(ctx, c, adm.From, claimedRegistry); err != nil {
		return Claim{}, nil, err
	}
	if err := r.authorizeRoute(sender, target); err != nil {
		return Claim{}, nil, err
	}
	adm.Sender = assertion(c.id, sender)
	claim, err = r.admit(ctx, c, adm)
	if errors.Is(err, ErrSenderChanged) {
		return Claim{}, nil, federation.Wrap(federation.EUNAVAILABLE, err, "the sender's directory record is changing; try again")
	}
	return claim, sender, err
}

// caller is a verified credential and its replay claim, which a request makes once: in
// the transaction that admits its message, or alone before any other answer.
type caller struct {
	id      federation.Identity
	replay  identity.Replay
	claimed bool
}

// verify verifies the caller's credential; whatever is wrong with it is EUNAUTHORIZED.
// Its replay key is left for the admission to claim.
func (r *Router) verify(ctx context.Context, cred federation.Credential) (*caller, error) {
	if cred.Token == "" {
		return nil, federation.Errorf(federation.EUNAUTHORIZED, "no credential: send Authorization: Bearer <JWT-SVID or DID-signed JWT>")
	}
	id, replay, err := r.verifier.VerifyUnclaimed(ctx, cred)
	if code := federation.ErrorCode(err); code == federation.EINVALID {
		return nil, federation.Wrap(federation.EUNAUTHORIZED, err, "the credential is not valid: "+federation.ErrorMessage(err))
	}
	if err != nil {
		return nil, err
	}
	if r.opts.Caveat != nil {
		if c := r.opts.Caveat(cred, id); c != "" {
			return nil, federation.Errorf(federation.EUNAUTHORIZED, "%s; present a JWT signed with the SVID's key (x5c header)", c)
		}
	}
	return &caller{id: id, replay: replay}, nil
}

// settle makes sure a request's answer follows its credential's replay claim. A request
// that did not admit a message (refused, a duplicate, a broadcast to no one) claims it
// now, alone: a credential is accepted once, whatever its first request was answered,
// and a replayed one is refused as such. One that failed on the table or the network
// before it admitted anything claims nothing: the caller may try the credential again.
func (r *Router) settle(ctx context.Context, c *caller, err error) error {
	switch federation.ErrorCode(err) {
	case federation.EUNAVAILABLE, federation.EINTERNAL:
		if !c.claimed {
			return err
		}
	}
	if cerr := r.claimReplay(ctx, c); cerr != nil {
		return cerr
	}
	return err
}

// claimReplay claims the caller's replay key alone, once. Errors: EUNAUTHORIZED
// "replayed jti"; the table's.
func (r *Router) claimReplay(ctx context.Context, c *caller) error {
	if c.claimed || c.replay.Key == "" {
		return nil
	}
	err := r.store.ClaimReplay(ctx, c.replay)
	if err != nil && !errors.Is(err, ErrReplayed) {
		return fmt.Errorf("claim the credential: %w", err)
	}
	c.claimed = true
	return replayed(err)
}

// replayed is the caller's answer to a credential used before.
func replayed(err error) error {
	if err == nil {
		return nil
	}
	return federation.Wrap(federation.EUNAUTHORIZED, err, "replayed jti")
}

// admit admits a, in the first shard of the global limit that takes it: a shard found
// full is remembered for the rest of the minute and the next one tried, up to
// shardTries. Errors: as Store.Admit's, ERATELIMITED when no shard takes it.
func (r *Router) admit(ctx context.Context, c *caller, a Admission) (Claim, error) {
	if a.N > a.AgentLimit || a.N > r.opts.GlobalRate {
		return Claim{}, federation.Errorf(federation.ERATELIMITED, "%d messages are more than a minute's limit", a.N)
	}
	probe := r.global.probe(a.Minute, a.From, a.MessageID, a.N)
	for range shardTries {
		shard, ok := probe.next()
		if !ok {
			break
		}
		a.GlobalShard, a.GlobalShardLimit = shard, r.global.limit(shard)
		claim, err := r.store.Admit(ctx, a)
		switch {
		case err == nil:
			c.claimed = true
			return claim, nil
		case errors.Is(err, ErrReplayed):
			c.claimed = true // by an earlier request
			return Claim{}, replayed(err)
		case errors.Is(err, ErrShardFull):
			probe.full(shard)
			continue
		case errors.Is(err, ErrAgentLimit):
			return Claim{}, federation.Wrap(federation.ERATELIMITED, err, fmt.Sprintf("%s reached its limit of %d messages a minute", a.From, a.AgentLimit))
		}
		return Claim{}, err
	}
	return Claim{}, federation.Wrap(federation.ERATELIMITED, ErrShardFull, fmt.Sprintf("the gateway reached its limit of %d messages a minute", r.opts.GlobalRate))
}

// refreshSender reads the sender's record again, past the cache, and authorizes it
// anew. Errors: as AuthorizeSender's; the table's.
func (r *Router) refreshSender(ctx context.Context, c *caller, from, claimedRegistry string) (*federation.Agent, error) {
	r.cache.drop(from)
	agents, err := r.store.Agents(ctx, []string{from})
	if err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	sender := find(agents, from)
	if err := AuthorizeSender(c.id, from, claimedRegistry, sender); err != nil {
		return nil, err
	}
	r.cache.put(*sender)
	return sender, nil
}

// assertion is what an admission asserts of an authorized sender's record.
func assertion(id federation.Identity, sender *federation.Agent) SenderAssertion {
	a := SenderAssertion{Registry: sender.Registry}
	if id.Subject != sender.DID {
		a.Identity = id.Subject
	}
	return a
}

// parties returns the records of the sender and the target, nil for one the directory
// lacks: from the cache, and the others in one read. cached says the sender's came from
// the cache.
func (r *Router) parties(ctx context.Context, from, to string) (sender, target *federation.Agent, cached bool, err error) {
	found := map[string]federation.Agent{}
	var missing []string
	for _, did := range []string{from, to} {
		if a, ok := r.cache.get(did); ok {
			found[did] = a
		} else if !slices.Contains(missing, did) {
			missing = append(missing, did)
		}
	}
	_, cached = found[from]
	if len(missing) > 0 {
		agents, err := r.store.Agents(ctx, missing)
		if err != nil {
			return nil, nil, false, fmt.Errorf("route: %w", err)
		}
		r.cache.put(agents...)
		for _, did := range missing {
			if a := find(agents, did); a != nil {
				found[did] = *a
			}
		}
	}
	if a, ok := found[from]; ok {
		sender = &a
	}
	if a, ok := found[to]; ok {
		target = &a
	}
	return sender, target, cached, nil
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
			r.cache.put(a)
			return &a, nil
		case code == federation.EUNAVAILABLE:
			return nil, fmt.Errorf("look up %s: %w", did, err)
		case code != federation.ENOTFOUND:
			r.log.WarnContext(ctx, "targeted lookup failed", "did", did, "error", err.Error())
		}
	}
	return nil, federation.Errorf(federation.ENOTFOUND, "no agent %s in the federation", did)
}

// AuthorizeSender checks who may send as from (routing and the token bridge share it):
// the verified identity must be from itself or an identity from's directory record
// declares, and that record must be active. A claimed registry (the request's
// source_registry) must be the record's. Errors: EFORBIDDEN, saying why.
func AuthorizeSender(id federation.Identity, from, claimedRegistry string, sender *federation.Agent) error {
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

// observation is what a routed message's metrics need of its way through Route.
type observation struct {
	delivered bool          // a delivery was attempted
	delivery  time.Duration // how long it took
}

// Outcomes of a routed message other than an error code's name (federation's codes:
// invalid, unauthorized, forbidden, not_found, conflict, too_large, rate_limited,
// unavailable, internal).
const (
	OutcomeDelivered      = "delivered"
	OutcomeDuplicate      = "duplicate"
	OutcomeDeliveryFailed = "delivery_failed"
)

// observe records a routed message's metrics: its outcome, its whole time, and the
// gateway's and the delivery's parts of it.
func (r *Router) observe(ctx context.Context, start time.Time, obs *observation, res federation.RouteResult, err error) {
	if r.opts.Metrics == nil {
		return
	}
	total := time.Since(start)
	outcome := OutcomeDelivered
	switch code := federation.ErrorCode(err); {
	case err == nil && res.Duplicate:
		outcome = OutcomeDuplicate
	case err == nil:
	case obs.delivered && code == federation.EUNAVAILABLE:
		outcome = OutcomeDeliveryFailed
	default:
		outcome = code
	}
	values := []metrics.Value{metrics.Count(metrics.RoutedMessages, 1), metrics.Millis(metrics.RouteLatency, total),
		metrics.Millis(metrics.RouteGatewayTime, total-obs.delivery)}
	if obs.delivered {
		values = append(values, metrics.Millis(metrics.RouteDeliveryTime, obs.delivery))
	}
	r.opts.Metrics.Emit(ctx, []metrics.Dim{{Name: metrics.DimOutcome, Value: outcome}}, values...)
}
