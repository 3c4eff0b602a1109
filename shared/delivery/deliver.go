package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"

	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
)

// Limits of a delivery.
const (
	// DefaultTimeout bounds a delivery whose context has no deadline. Callers pass their
	// own budget, well inside API Gateway's 29 s.
	DefaultTimeout = 10 * time.Second
	// MaxReplyBytes bounds what is read of a target's answer: a larger one is refused
	// rather than held in memory.
	MaxReplyBytes = 4 << 20
	// MaxSummaryBytes is about the most content a summary keeps of the target's answer;
	// longer text is cut and larger data left out, each marked "truncated".
	MaxSummaryBytes = 16 << 10
)

// Message is one message to deliver: the routing's view of it, with the identity the
// gateway verified for the sender.
type Message struct {
	ID             string
	From           string // sender DID
	To             string // target DID
	SourceRegistry string
	TargetRegistry string
	Payload        json.RawMessage
	// Parts says Payload is a JSON list of A2A parts, forwarded as they are.
	Parts      bool
	VerifiedBy string // how the sender was verified: jwt-svid, x509-svid, did:key, did:web
	Subject    string // the verified SPIFFE ID or DID
}

// Outcome kinds.
const (
	KindMessage = "message" // the target answered with a message
	KindTask    = "task"    // the target answered with a task
)

// Outcome is what a target answered, in short.
type Outcome struct {
	Kind string // KindMessage or KindTask
	// Summary is the compact JSON summary of the answer (see Deliver); it names its kind
	// too, so it can be stored and returned on its own.
	Summary json.RawMessage
}

// Deliverer sends messages to agents' A2A endpoints and signs each one.
type Deliverer struct {
	client    *http.Client
	signer    *Signer
	gatewayID string
	now       func() time.Time
}

// New returns a Deliverer that sends through httpClient (the outbound guard's client;
// nil means a guarded client with the defaults) and signs with signer as gatewayID.
func New(httpClient *http.Client, signer *Signer, gatewayID string) *Deliverer {
	if httpClient == nil {
		httpClient = outbound.NewClient(outbound.Options{Purpose: outbound.Agents})
	}
	c := *httpClient
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &observer{base: base}
	return &Deliverer{client: &c, signer: signer, gatewayID: gatewayID, now: time.Now}
}

// Deliver sends m to the A2A v1.0 JSON-RPC endpoint of its target with SendMessage
// (A2A-Version 1.0) and waits for the answer, within ctx's deadline (DefaultTimeout
// when it has none).
//
// The A2A message has the role user, messageId m.ID (so the target can recognize a
// repeat), one data part holding the payload (a payload that is not a JSON object is
// sent as {"value": <payload>}, with federation.payload_wrapped true) or, for m.Parts,
// the sender's parts as they came (federation.payload_form "parts"), and the Meta*
// metadata, federation.signature included. When ctx carries a correlation (package
// correlation), the message's metadata and the HTTP request carry its traceparent, and
// the metadata its correlation ID.
//
// The Outcome's summary is {"kind":"message","message_id","context_id","parts":[...],
// "metadata"} for a message, {"kind":"task","task_id","context_id","state",
// "status_message":[...],"artifacts":[{"artifact_id","name","parts":[...],"metadata"}],
// "metadata"} for a task (state in lower case: completed, failed, input_required, ...).
// A part is {"text"}, {"data"}, {"url"} or {"raw_bytes": n}, with media_type and
// filename when set. Content beyond MaxSummaryBytes, and metadata over 2 KiB, is cut or
// left out, and the summary (or the part) says "truncated": true.
//
// Errors: EINVALID when m cannot be sent (no ID, target or endpoint; a payload that is
// not JSON); EUNAVAILABLE, with a reason that is safe to show the caller, when the
// target is unreachable, too slow, answers something that is not A2A JSON-RPC or a
// JSON-RPC error, or ends the task failed, rejected or canceled: in that last case the
// Outcome is returned too. The cause is kept in the error for the log.
func (d *Deliverer) Deliver(ctx context.Context, endpoint string, m Message) (Outcome, error) {
	switch {
	case m.ID == "" || m.To == "":
		return Outcome{}, federation.Errorf(federation.EINVALID, "a message needs an ID and a target")
	case endpoint == "":
		return Outcome{}, federation.Errorf(federation.EINVALID, "agent %s has no A2A endpoint", m.To)
	case len(m.Payload) > 0 && !json.Valid(m.Payload):
		return Outcome{}, federation.Errorf(federation.EINVALID, "the payload is not valid JSON")
	}
	if len(m.Payload) == 0 {
		m.Payload = json.RawMessage("null")
	}
	trace := tracing{}
	if id, ok := correlation.FromContext(ctx); ok {
		trace = tracing{correlationID: id.Value, traceparent: id.Traceparent()}
	}
	msg, err := d.message(m, trace)
	if err != nil {
		return Outcome{}, err
	}

	budget := DefaultTimeout
	if deadline, ok := ctx.Deadline(); ok {
		budget = time.Until(deadline)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	x := &exchange{traceparent: trace.traceparent}
	ctx = context.WithValue(ctx, exchangeKey{}, x)

	client, err := a2aclient.NewFromEndpoints(ctx,
		[]*a2a.AgentInterface{a2a.NewAgentInterface(endpoint, a2a.TransportProtocolJSONRPC)},
		a2aclient.WithDefaultsDisabled(), a2aclient.WithJSONRPCTransport(d.client))
	if err != nil {
		return Outcome{}, federation.Wrap(federation.EINTERNAL, err, "A2A client")
	}
	defer client.Destroy()

	res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	if err != nil {
		return Outcome{}, classify(ctx, err, m.To, budget, x)
	}
	return outcome(res, m.To)
}

// tracing is what a delivery tells the target of the request it belongs to.
type tracing struct{ correlationID, traceparent string }

// message builds the A2A message for m, signed.
func (d *Deliverer) message(m Message, trace tracing) (*a2a.Message, error) {
	claims, err := ClaimsFor(d.gatewayID, m, d.now())
	if err != nil {
		return nil, err
	}
	token, err := d.signer.Sign(claims)
	if err != nil {
		return nil, federation.Wrap(federation.EINTERNAL, err, "sign the message")
	}
	meta := map[string]any{
		MetaMessageID: m.ID, MetaFrom: m.From, MetaTo: m.To,
		MetaSourceRegistry: m.SourceRegistry, MetaTargetRegistry: m.TargetRegistry,
		MetaGateway: d.gatewayID, MetaSignature: token,
	}
	if trace.correlationID != "" {
		meta[MetaCorrelationID], meta[MetaTraceparent] = trace.correlationID, trace.traceparent
	}
	if claims.VerifiedBy != nil {
		meta[MetaVerifiedBy] = map[string]any{"method": m.VerifiedBy, "subject": m.Subject}
	}
	var parts []*a2a.Part
	if m.Parts {
		if err := json.Unmarshal(m.Payload, &parts); err != nil || len(parts) == 0 {
			return nil, federation.Errorf(federation.EINVALID, "the payload is not a list of A2A parts")
		}
		meta[MetaPayloadForm] = PayloadParts
	} else {
		var data any = m.Payload
		if !isObject(m.Payload) {
			data = map[string]any{"value": m.Payload}
			meta[MetaPayloadWrapped] = true
		}
		part := a2a.NewDataPart(data)
		part.MediaType = "application/json"
		parts = []*a2a.Part{part}
	}
	msg := a2a.NewMessage(a2a.MessageRoleUser, parts...)
	msg.ID = m.ID
	msg.Metadata = meta
	return msg, nil
}

// outcome summarizes a result; a task that ended badly is an error too.
func outcome(res a2a.SendMessageResult, to string) (Outcome, error) {
	o, err := summarize(res)
	if err != nil {
		return Outcome{}, federation.Wrap(federation.EUNAVAILABLE, err, fmt.Sprintf("agent %s answered something that is not an A2A message or task", to))
	}
	task, ok := res.(*a2a.Task)
	if !ok {
		return o, nil
	}
	var verb string
	switch task.Status.State {
	case a2a.TaskStateFailed:
		verb = "failed to process"
	case a2a.TaskStateRejected:
		verb = "rejected"
	case a2a.TaskStateCanceled:
		verb = "canceled its task for"
	default:
		return o, nil
	}
	reason := ""
	if task.Status.Message != nil {
		reason = ": " + clip(partsText(task.Status.Message.Parts), 300)
	}
	return o, federation.Errorf(federation.EUNAVAILABLE, "agent %s %s the message (task %s)%s", to, verb, clip(string(task.ID), 100), reason)
}

// classify turns a failed SendMessage into a caller-safe EUNAVAILABLE error.
func classify(ctx context.Context, err error, to string, budget time.Duration, x *exchange) error {
	status, head, responded := x.result()
	var rpcErr *a2a.Error
	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var reason string
	switch {
	case outbound.IsRefused(err):
		reason = fmt.Sprintf("agent %s cannot be reached: its endpoint is not a public https address", to)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		reason = fmt.Sprintf("agent %s did not answer within %s", to, budget.Round(100*time.Millisecond))
	case errors.Is(ctx.Err(), context.Canceled):
		reason = fmt.Sprintf("the delivery to agent %s was canceled", to)
	case errors.As(err, &rpcErr):
		code, message := rpcError(head, rpcErr)
		reason = fmt.Sprintf("agent %s answered with JSON-RPC error %d: %s", to, code, clip(message, 300))
	case errors.Is(err, errReplyTooLarge):
		reason = fmt.Sprintf("agent %s answered more than %d MiB", to, MaxReplyBytes>>20)
	case responded && status != http.StatusOK:
		reason = fmt.Sprintf("agent %s answered HTTP %d instead of an A2A JSON-RPC response", to, status)
	case responded:
		reason = fmt.Sprintf("agent %s answered something that is not an A2A JSON-RPC response", to)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr) || (errors.As(err, &opErr) && opErr.Op == "dial"):
		reason = fmt.Sprintf("agent %s is unreachable: its endpoint refused the connection or does not resolve", to)
	default:
		reason = fmt.Sprintf("agent %s is unreachable: the connection failed before it answered", to)
	}
	return federation.Wrap(federation.EUNAVAILABLE, err, reason)
}

// rpcCodes are the JSON-RPC codes of the A2A errors, for when the answer's own code
// cannot be read back (a2a-go keeps the error, not its code).
var rpcCodes = []struct {
	err  error
	code int
}{
	{a2a.ErrParseError, -32700}, {a2a.ErrInvalidRequest, -32600}, {a2a.ErrMethodNotFound, -32601},
	{a2a.ErrInvalidParams, -32602}, {a2a.ErrInternalError, -32603}, {a2a.ErrServerError, -32000},
	{a2a.ErrTaskNotFound, -32001}, {a2a.ErrTaskNotCancelable, -32002}, {a2a.ErrPushNotificationNotSupported, -32003},
	{a2a.ErrUnsupportedOperation, -32004}, {a2a.ErrUnsupportedContentType, -32005}, {a2a.ErrInvalidAgentResponse, -32006},
	{a2a.ErrExtendedCardNotConfigured, -32007}, {a2a.ErrExtensionSupportRequired, -32008}, {a2a.ErrVersionNotSupported, -32009},
	{a2a.ErrUnauthenticated, -31401}, {a2a.ErrUnauthorized, -31403},
}

// rpcError returns the code and message of the JSON-RPC error the target answered: read
// from the start of its answer when possible, since a2a-go maps codes it does not know
// to "internal error".
func rpcError(head []byte, e *a2a.Error) (int, string) {
	var resp struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(head, &resp) == nil && resp.Error != nil {
		return resp.Error.Code, resp.Error.Message
	}
	for _, c := range rpcCodes {
		if errors.Is(e, c.err) {
			return c.code, e.Message
		}
	}
	return -32603, e.Message
}

// exchange records, for one delivery, what the target's HTTP answer looked like: the
// JSON-RPC client reports only errors, and a caller deserves to hear "HTTP 502" rather
// than "could not decode".
type exchange struct {
	traceparent string // sent as the traceparent header; "" for none

	mu        sync.Mutex
	responded bool
	status    int
	head      []byte // the first headBytes of the body
}

type exchangeKey struct{}

const headBytes = 64 << 10

func (x *exchange) result() (int, []byte, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.status, x.head, x.responded
}

var errReplyTooLarge = fmt.Errorf("the answer is over %d bytes", MaxReplyBytes)

// observer is the Deliverer's transport: it records the exchange and bounds the body.
type observer struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x != nil && x.traceparent != "" {
		req = req.Clone(req.Context()) // a RoundTripper must not change its caller's request
		req.Header.Set(correlation.Header, x.traceparent)
	}
	resp, err := o.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if x != nil {
		x.mu.Lock()
		x.responded, x.status, x.head = true, resp.StatusCode, nil
		x.mu.Unlock()
	}
	resp.Body = newLimitedBody(resp.Body, x)
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pooled connections.
func (o *observer) CloseIdleConnections() {
	if c, ok := o.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// limitedBody fails a read past MaxReplyBytes and keeps the first headBytes read.
type limitedBody struct {
	rc   io.ReadCloser
	r    io.Reader // rc limited to one byte more than allowed: reading it means too much
	read int64
	x    *exchange
}

func newLimitedBody(rc io.ReadCloser, x *exchange) *limitedBody {
	return &limitedBody{rc: rc, r: io.LimitReader(rc, MaxReplyBytes+1), x: x}
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.x != nil && n > 0 {
		b.x.mu.Lock()
		if keep := headBytes - len(b.x.head); keep > 0 {
			b.x.head = append(b.x.head, p[:min(n, keep)]...)
		}
		b.x.mu.Unlock()
	}
	if over := b.read - MaxReplyBytes; over > 0 {
		return n - int(over), errReplyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
