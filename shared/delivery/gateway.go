package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/a2aproject/a2a-go/v2/log"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Router routes one message for a caller; *routing.Router behind a small adapter is one.
type Router interface {
	// Route delivers req for the caller whose credential is authorization: the incoming
	// request's Authorization header, "" when it had none. Errors: EINVALID, ENOTFOUND,
	// EUNAUTHORIZED, EFORBIDDEN, ECONFLICT, ETOOLARGE, ERATELIMITED, EUNAVAILABLE,
	// EINTERNAL.
	Route(ctx context.Context, req federation.RouteRequest, authorization string) (federation.RouteResult, error)
}

// Gateway skill IDs.
const (
	SkillRoute     = "route"
	SkillDiscover  = "discover"
	SkillBroadcast = "broadcast"
)

// CardVersion is the version of the gateway's A2A face: its skills and the metadata
// contract of this package, not the deployment's version.
const CardVersion = "1.0.0"

// MaxRequestBytes bounds a JSON-RPC request to the gateway: the largest payload routed
// (1 MiB) and room for the envelope.
const MaxRequestBytes = 1<<20 + 64<<10

// GatewayCard returns the gateway's A2A v1.0 agent card, served at
// baseURL + "/.well-known/agent-card.json", its JSON-RPC interface at baseURL + "/a2a".
func GatewayCard(baseURL, gatewayID string) *a2a.AgentCard {
	base := strings.TrimRight(baseURL, "/")
	return &a2a.AgentCard{
		Name: "Federation Gateway",
		Description: fmt.Sprintf("Federation gateway %s: routes A2A messages between agents of different registries, "+
			"verifying the sender's identity (SPIFFE SVID, did:key, did:web) on the way. Every message it forwards "+
			"carries %s metadata, a JWS the target can check with the keys at %s/.well-known/jwks.json.",
			gatewayID, MetaSignature, base),
		Version:             CardVersion,
		SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(base+"/a2a", a2a.TransportProtocolJSONRPC)},
		Capabilities:        a2a.AgentCapabilities{},
		DefaultInputModes:   []string{"application/json", "text/plain"},
		DefaultOutputModes:  []string{"application/json", "text/plain"},
		SecuritySchemes: a2a.NamedSecuritySchemes{
			"bearer": a2a.HTTPAuthSecurityScheme{
				Scheme: "Bearer", BearerFormat: "JWT",
				Description: "A SPIFFE JWT-SVID, or a JWT signed by the sender's did:key or did:web key.",
			},
			"x509-svid": a2a.HTTPAuthSecurityScheme{
				Scheme:      "X509-SVID",
				Description: "A SPIFFE X.509-SVID chain: PEM, or base64 DER certificates separated by commas.",
			},
		},
		SecurityRequirements: a2a.SecurityRequirementsOptions{{"bearer": {}}, {"x509-svid": {}}},
		Skills: []a2a.AgentSkill{
			{
				ID: SkillRoute, Name: "Route a message",
				Description: "Delivers a message to an agent of another registry. Name the target's DID in the message " +
					"metadata " + MetaTo + " (optionally " + MetaMessageID + ", " + MetaFrom + ", " + MetaSourceRegistry +
					"); its parts (text, data, files) reach the target as they are. Answers with a message whose data part is the " +
					"delivery result: status, message_id, target_registry, the target's response summary and the fee.",
				Tags: []string{"routing", "federation", "a2a", "messaging"},
				Examples: []string{`{"message": {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hello"}], ` +
					`"metadata": {"federation.to": "did:agentvault:textkit/mirror"}}}`},
				InputModes:  []string{"application/json", "text/plain"},
				OutputModes: []string{"application/json"},
			},
			{
				ID: SkillDiscover, Name: "Discover agents",
				Description: "Searches the federated directory of every registry by service type, capability, tag, " +
					"registry or text, a page at a time (GET " + base + "/api/v1/discover).",
				Tags:     []string{"discovery", "directory", "search", "federation"},
				Examples: []string{"service_type=weather", "capability=echo&registry=alpha"},
			},
			{
				ID: SkillBroadcast, Name: "Broadcast a message",
				Description: "Delivers one message to every agent that matches the criteria (discovery's filters: service_type, " +
					"capability, tag, registry, q), or to every agent with \"all\": true, across registries, and reports which " +
					"were reached (POST " + base + "/api/v1/broadcast, Content-Type application/json).",
				Tags: []string{"routing", "broadcast", "federation"},
				Examples: []string{
					`{"criteria": {"service_type": "weather"}, "payload": {"alert": "storm"}}`,
					`{"criteria": {"capability": ["echo", "reverse"], "registry": "beta"}, "payload": {"text": "hello"}}`,
					`{"all": true, "payload": {"notice": "maintenance at 02:00 UTC"}}`,
				},
			},
		},
	}
}

// HandlerOption configures NewA2AHandler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct{ logger *slog.Logger }

// WithLogger sets the logger of the A2A handler: failed routings' causes go there, as
// they never go to the caller. The default is slog.Default().
func WithLogger(l *slog.Logger) HandlerOption {
	return func(c *handlerConfig) { c.logger = l }
}

// NewA2AHandler serves the gateway as an A2A v1.0 JSON-RPC agent, at whatever path it is
// mounted (POST /a2a). SendMessage routes: its message names the target in its metadata
// (MetaTo; MetaMessageID, MetaFrom and MetaSourceRegistry optional; without MetaMessageID
// the A2A messageId is the federation message ID, so a client that resends a message
// gets the first delivery's result; another federation.* key is refused). Its parts,
// text, data and files alike, reach the target as they are (federation.RouteRequest.Parts).
// MetaSourceRegistry is an assertion the routing checks against the directory, never a
// value it forwards. r.Route is called with the request's Authorization header.
//
// The answer is a message (role agent), not a task: routing is synchronous, and the
// gateway keeps no task a later GetTask could read. Its first part is a data part with
// the federation.RouteResult, the second a one-line text for people.
//
// Errors are JSON-RPC errors whose message is caller-safe and whose data holds
// {"code": <federation error code>}: EINVALID, ENOTFOUND, ECONFLICT, ETOOLARGE and a bad
// message are -32602 (invalid params); EUNAUTHORIZED -31401 (unauthenticated);
// EFORBIDDEN -31403 (unauthorized); ERATELIMITED and EUNAVAILABLE -32000 (server error);
// anything else -32603. a2a-go answers malformed JSON with -32700, an unknown method
// with -32601. A request whose Content-Type is not application/json is -32600. Streaming, tasks and push notifications are -32004 (unsupported), a task
// ID -32001 (not found), and a request over MaxRequestBytes -32600.
func NewA2AHandler(r Router, card *a2a.AgentCard, opts ...HandlerOption) http.Handler {
	cfg := handlerConfig{logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	g := &gateway{router: r}
	if card != nil {
		for _, s := range card.Skills {
			g.skills = append(g.skills, s.ID)
		}
	}
	h := &a2asrv.InterceptedHandler{Handler: g, Logger: cfg.logger, Interceptors: []a2asrv.CallInterceptor{versionCheck{}}}
	rpc := a2asrv.NewJSONRPCHandler(h, a2asrv.WithTransportPanicHandler(func(v any) error {
		cfg.logger.Error("A2A handler panic", "panic", fmt.Sprint(v))
		return a2a.NewError(a2a.ErrInternalError, federation.ErrorMessage(nil))
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeRPCError(w, -32600, "send the JSON-RPC request with Content-Type: application/json")
			return
		}
		if req.ContentLength > MaxRequestBytes {
			writeRPCError(w, -32600, fmt.Sprintf("the request is over %d bytes", MaxRequestBytes))
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, MaxRequestBytes)
		rpc.ServeHTTP(w, req)
	})
}

// writeRPCError answers a JSON-RPC error before a2a-go has read the request.
func writeRPCError(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": message},
	})
}

// versionCheck refuses a request whose A2A-Version names another major version. A
// request without the header is served, so that curl works.
type versionCheck struct {
	a2asrv.PassthroughCallInterceptor
}

func (versionCheck) Before(ctx context.Context, cc *a2asrv.CallContext, _ *a2asrv.Request) (context.Context, any, error) {
	if v, ok := cc.ServiceParams().Get(a2a.SvcParamVersion); ok && len(v) > 0 && v[0] != "" {
		if major, _, _ := strings.Cut(v[0], "."); major != "1" {
			return ctx, nil, a2a.NewError(a2a.ErrVersionNotSupported, fmt.Sprintf("A2A-Version %s is not supported; the gateway speaks %s", clip(v[0], 20), a2a.Version))
		}
	}
	return ctx, nil, nil
}

// gateway implements a2asrv.RequestHandler itself rather than an AgentExecutor: the SDK
// runs an executor detached from the request (its deadline and cancellation lost) and
// stores tasks in memory, while a routing is one synchronous call whose errors must
// reach the caller as they are.
type gateway struct {
	router Router
	skills []string
}

var _ a2asrv.RequestHandler = (*gateway)(nil)

// SendMessage routes the message.
func (g *gateway) SendMessage(ctx context.Context, req *a2a.SendMessageRequest) (a2a.SendMessageResult, error) {
	rr, err := g.routeRequest(req)
	if err != nil {
		return nil, rpcErrorFor(ctx, err)
	}
	res, err := g.router.Route(ctx, rr, authorization(ctx))
	if err != nil {
		return nil, rpcErrorFor(ctx, err)
	}
	text := fmt.Sprintf("%s message %s to %s", res.Status, res.MessageID, rr.To)
	if res.TargetRegistry != "" {
		text += " (registry " + res.TargetRegistry + ")"
	}
	if res.Duplicate {
		text += "; a repeat: this is the first delivery's result"
	}
	result := a2a.NewDataPart(res)
	result.MediaType = "application/json"
	reply := a2a.NewMessage(a2a.MessageRoleAgent, result, a2a.NewTextPart(text))
	reply.ContextID = req.Message.ContextID
	if reply.ContextID == "" {
		reply.ContextID = a2a.NewContextID()
	}
	reply.Metadata = map[string]any{MetaMessageID: res.MessageID, MetaTo: rr.To}
	return reply, nil
}

// routeRequest reads the routing request out of an A2A SendMessage. Message metadata
// wins over the request's metadata, which is read too (some clients put it there).
// Errors: EINVALID with what is wrong, or unsupported operation for another skill.
func (g *gateway) routeRequest(req *a2a.SendMessageRequest) (federation.RouteRequest, error) {
	if req == nil || req.Message == nil {
		return federation.RouteRequest{}, federation.Errorf(federation.EINVALID, "params.message is required")
	}
	msg := req.Message
	if err := checkMeta("message", msg.Metadata); err != nil {
		return federation.RouteRequest{}, err
	}
	if err := checkMeta("request", req.Metadata); err != nil {
		return federation.RouteRequest{}, err
	}
	var bad error
	meta := func(key string) string {
		for _, m := range []map[string]any{msg.Metadata, req.Metadata} {
			v, ok := m[key]
			if !ok || v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok && bad == nil {
				bad = federation.Errorf(federation.EINVALID, "metadata %s must be a string", key)
			}
			return strings.TrimSpace(s)
		}
		return ""
	}
	rr := federation.RouteRequest{
		To: meta(MetaTo), From: meta(MetaFrom), MessageID: meta(MetaMessageID),
		SourceRegistry: meta(MetaSourceRegistry),
	}
	skill := meta(MetaSkill)
	if bad != nil {
		return federation.RouteRequest{}, bad
	}
	switch {
	case skill != "" && skill != SkillRoute && slices.Contains(g.skills, skill):
		return federation.RouteRequest{}, a2a.NewError(a2a.ErrUnsupportedOperation, fmt.Sprintf(
			"skill %s is not served over A2A yet; use the HTTP API (see the agent card), or skill %s", skill, SkillRoute))
	case skill != "" && skill != SkillRoute:
		return federation.RouteRequest{}, federation.Errorf(federation.EINVALID, "no skill %q; the gateway offers %s", clip(skill, 64), strings.Join(g.skills, ", "))
	case rr.To == "":
		return federation.RouteRequest{}, federation.Errorf(federation.EINVALID, "name the target agent's DID in the message metadata %s", MetaTo)
	case msg.ID == "":
		return federation.RouteRequest{}, federation.Errorf(federation.EINVALID, "params.message.messageId is required")
	}
	if rr.MessageID == "" {
		rr.MessageID = msg.ID
	}
	payload, err := partsPayload(msg.Parts)
	if err != nil {
		return federation.RouteRequest{}, err
	}
	rr.Payload, rr.Parts = payload, true
	return rr, nil
}

// partsPayload is the payload of an A2A message sent to the gateway: its parts as they
// came (text, data, files by URL or inline bytes), a JSON list of A2A v1.0 parts that
// reaches the target part for part. Errors: EINVALID for a message without parts.
func partsPayload(parts []*a2a.Part) (json.RawMessage, error) {
	kept := make([]*a2a.Part, 0, len(parts))
	for _, p := range parts {
		if p == nil {
			continue
		}
		switch p.Content.(type) {
		case a2a.Text, a2a.Data, a2a.URL, a2a.Raw:
			kept = append(kept, p)
		default:
			return nil, federation.Errorf(federation.EINVALID, "a part is neither text, data nor a file")
		}
	}
	if len(kept) == 0 {
		return nil, federation.Errorf(federation.EINVALID, "the message has no payload: send text, data or file parts")
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, federation.Wrap(federation.EINVALID, err, "a part cannot be encoded as JSON")
	}
	return b, nil
}

// inboundMeta are the federation.* metadata keys a message to the gateway may carry;
// any other federation.* key is refused, so that a misspelt one is not ignored.
var inboundMeta = []string{MetaTo, MetaFrom, MetaMessageID, MetaSourceRegistry, MetaSkill}

// checkMeta refuses the federation.* keys of m that the gateway does not read.
func checkMeta(where string, m map[string]any) error {
	for k := range m {
		if strings.HasPrefix(k, "federation.") && !slices.Contains(inboundMeta, k) {
			return federation.Errorf(federation.EINVALID, "%s metadata %q is not one the gateway reads; it reads %s",
				where, clip(k, 64), strings.Join(inboundMeta, ", "))
		}
	}
	return nil
}

// authorization is the Authorization header of the HTTP request being served: a2a-go's
// JSON-RPC transport puts every header in the call context's service parameters.
func authorization(ctx context.Context) string {
	cc, ok := a2asrv.CallContextFrom(ctx)
	if !ok {
		return ""
	}
	v, _ := cc.ServiceParams().Get("Authorization")
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// rpcErrorFor maps a domain error to the A2A error that a2a-go turns into a JSON-RPC
// error, with a caller-safe message; an A2A error passes as it is. Causes are logged.
func rpcErrorFor(ctx context.Context, err error) error {
	if e, ok := err.(*a2a.Error); ok {
		return e
	}
	code := federation.ErrorCode(err)
	var kind error
	switch code {
	case federation.EINVALID, federation.ENOTFOUND, federation.ECONFLICT, federation.ETOOLARGE:
		kind = a2a.ErrInvalidParams
	case federation.EUNAUTHORIZED:
		kind = a2a.ErrUnauthenticated
	case federation.EFORBIDDEN:
		kind = a2a.ErrUnauthorized
	case federation.ERATELIMITED, federation.EUNAVAILABLE:
		kind = a2a.ErrServerError
	default:
		kind = a2a.ErrInternalError
	}
	switch code {
	case federation.EINTERNAL:
		log.Error(ctx, "route over A2A failed", err)
	case federation.EUNAVAILABLE:
		log.Warn(ctx, "route over A2A: target unavailable", "error", err.Error())
	}
	return a2a.NewError(kind, federation.ErrorMessage(err)).WithDetails(map[string]any{"code": code})
}

// The gateway keeps no tasks and does not stream: the other methods say so.

// GetTask implements a2asrv.RequestHandler.
func (g *gateway) GetTask(context.Context, *a2a.GetTaskRequest) (*a2a.Task, error) {
	return nil, errNoTasks
}

// ListTasks implements a2asrv.RequestHandler.
func (g *gateway) ListTasks(context.Context, *a2a.ListTasksRequest) (*a2a.ListTasksResponse, error) {
	return nil, a2a.NewError(a2a.ErrUnsupportedOperation, "the gateway keeps no tasks: SendMessage answers with a message")
}

// CancelTask implements a2asrv.RequestHandler.
func (g *gateway) CancelTask(context.Context, *a2a.CancelTaskRequest) (*a2a.Task, error) {
	return nil, errNoTasks
}

// SendStreamingMessage implements a2asrv.RequestHandler.
func (g *gateway) SendStreamingMessage(context.Context, *a2a.SendMessageRequest) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) { yield(nil, errNoStreaming) }
}

// SubscribeToTask implements a2asrv.RequestHandler.
func (g *gateway) SubscribeToTask(context.Context, *a2a.SubscribeToTaskRequest) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) { yield(nil, errNoStreaming) }
}

// GetTaskPushConfig implements a2asrv.RequestHandler.
func (g *gateway) GetTaskPushConfig(context.Context, *a2a.GetTaskPushConfigRequest) (*a2a.PushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// ListTaskPushConfigs implements a2asrv.RequestHandler.
func (g *gateway) ListTaskPushConfigs(context.Context, *a2a.ListTaskPushConfigRequest) (*a2a.ListTaskPushConfigResponse, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// CreateTaskPushConfig implements a2asrv.RequestHandler.
func (g *gateway) CreateTaskPushConfig(context.Context, *a2a.PushConfig) (*a2a.PushConfig, error) {
	return nil, a2a.ErrPushNotificationNotSupported
}

// DeleteTaskPushConfig implements a2asrv.RequestHandler.
func (g *gateway) DeleteTaskPushConfig(context.Context, *a2a.DeleteTaskPushConfigRequest) error {
	return a2a.ErrPushNotificationNotSupported
}

// GetExtendedAgentCard implements a2asrv.RequestHandler.
func (g *gateway) GetExtendedAgentCard(context.Context, *a2a.GetExtendedAgentCardRequest) (*a2a.AgentCard, error) {
	return nil, a2a.NewError(a2a.ErrUnsupportedOperation, "the gateway has no extended agent card")
}

var (
	errNoTasks     = a2a.NewError(a2a.ErrTaskNotFound, "the gateway keeps no tasks: SendMessage answers with a message")
	errNoStreaming = a2a.NewError(a2a.ErrUnsupportedOperation, "the gateway does not stream: use SendMessage")
)
