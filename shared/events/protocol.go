package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/jsontext"
)

// The WebSocket protocol. A client sends JSON frames with an action:
//
//	{"action":"subscribe","types":["agent.*","message.delivered"],"registry":"beta",
//	 "agent":"did:...","transfer":"br-...","after":"0000000000000042","id":"s1"}
//	{"action":"unsubscribe"}
//	{"action":"ping"}
//
// Every field but action is optional; id, when given, comes back in the answer. A new
// subscribe replaces the connection's subscription. The gateway sends JSON frames with a
// kind: event, subscribed, live (the replay is done: what follows is live), unsubscribed,
// pong and error.
const (
	ActionSubscribe   = "subscribe"
	ActionUnsubscribe = "unsubscribe"
	ActionPing        = "ping"
)

// Frame kinds the gateway sends.
const (
	KindEvent        = "event"
	KindSubscribed   = "subscribed"
	KindLive         = "live"
	KindUnsubscribed = "unsubscribed"
	KindPong         = "pong"
	KindError        = "error"
)

// Limits of the protocol.
const (
	// MaxRequest is the largest frame a client may send: a subscription is small. API
	// Gateway itself closes a connection (code 1009) whose message is over 128 KB or whose
	// frame is over 32 KB; anything between MaxRequest and those gets an error frame.
	MaxRequest = 8 << 10
	// MaxFrame is the largest frame the gateway sends: API Gateway's frame size (32 KB),
	// so every frame is one WebSocket frame, well inside its 128 KB message limit.
	MaxFrame = 32 << 10

	maxTypes     = 32
	maxFilterLen = 512
	maxIDLen     = 64
)

// Request is a decoded client frame.
type Request struct {
	Action string
	ID     string // the client's correlation ID, echoed in the answer
	Filter Filter
	// After is where a subscription resumes: nil subscribes from now.
	After *Position
}

// DecodeRequest reads a client frame. Every error is EINVALID or ETOOLARGE, with a
// message in the protocol's words.
func DecodeRequest(body []byte) (Request, error) {
	var req Request
	if len(body) > MaxRequest {
		return req, federation.Errorf(federation.ETOOLARGE, "the frame is %d bytes; the most a frame may have is %d", len(body), MaxRequest)
	}
	var fields map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&fields); err != nil || fields == nil {
		return req, federation.Errorf(federation.EINVALID, `a frame is a JSON object with an action, e.g. {"action":"subscribe"}`)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return req, federation.Errorf(federation.EINVALID, `a frame is one JSON object with an action, e.g. {"action":"subscribe"}`)
	}
	if err := str(fields, "id", maxIDLen, &req.ID); err != nil {
		return req, err
	}
	if _, ok := fields["action"]; !ok {
		return req, federation.Errorf(federation.EINVALID, "the frame has no action; want subscribe, unsubscribe or ping")
	}
	if err := str(fields, "action", 32, &req.Action); err != nil {
		return req, err
	}
	allowed := []string{"action", "id"}
	switch req.Action {
	case ActionSubscribe:
		allowed = append(allowed, "types", "registry", "agent", "transfer", "after")
	case ActionUnsubscribe, ActionPing:
	default:
		return req, federation.Errorf(federation.EINVALID, "unknown action %q; want subscribe, unsubscribe or ping", truncate(req.Action, 32))
	}
	for name := range fields {
		if !slices.Contains(allowed, name) {
			if req.Action == ActionSubscribe {
				return req, federation.Errorf(federation.EINVALID, "unknown filter %q; a subscription has types, registry, agent, transfer and after", truncate(name, 40))
			}
			return req, federation.Errorf(federation.EINVALID, "%s takes no %q", req.Action, truncate(name, 40))
		}
	}
	if req.Action != ActionSubscribe {
		return req, nil
	}
	if raw, ok := fields["types"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &req.Filter.Types); err != nil {
			return req, federation.Errorf(federation.EINVALID, `types is a list of event types, e.g. ["agent.*", "message.delivered"]`)
		}
		if len(req.Filter.Types) > maxTypes {
			return req, federation.Errorf(federation.EINVALID, "types names %d types; the most is %d", len(req.Filter.Types), maxTypes)
		}
		for _, t := range req.Filter.Types {
			if !KnownType(t) {
				return req, federation.Errorf(federation.EINVALID, "unknown event type %q; known: %s, or a family such as agent.*",
					truncate(t, 40), strings.Join(Types(), ", "))
			}
		}
	}
	for name, dst := range map[string]*string{"registry": &req.Filter.Registry, "agent": &req.Filter.Agent, "transfer": &req.Filter.Transfer} {
		if err := str(fields, name, maxFilterLen, dst); err != nil {
			return req, err
		}
	}
	var after string
	if err := str(fields, "after", 32, &after); err != nil {
		return req, err
	}
	if after != "" {
		p, err := ParsePosition(after)
		if err != nil {
			return req, err
		}
		req.After = &p
	}
	return req, nil
}

// str reads an optional string field of at most n bytes into dst.
func str(fields map[string]json.RawMessage, name string, n int, dst *string) error {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return federation.Errorf(federation.EINVALID, "%s is a string", name)
	}
	if len(*dst) > n {
		return federation.Errorf(federation.EINVALID, "%s is longer than %d bytes", name, n)
	}
	return nil
}

// Frame is what the gateway sends a subscriber.
type Frame struct {
	Kind string `json:"kind"`
	// ID is the correlation ID of the request answered.
	ID string `json:"id,omitempty"`
	// Event is the event of an event frame.
	Event *Event `json:"event,omitempty"`
	// Subscription names the subscription an event, subscribed, live or unsubscribed frame
	// is about: after a new subscribe, frames of the one it replaced may still arrive.
	Subscription string  `json:"subscription,omitempty"`
	Filter       *Filter `json:"filter,omitempty"`
	// Position is where a subscription resumes (subscribed) or turns live (live).
	Position *Position `json:"position,omitempty"`
	// Code and Message describe an error; Action is the action that failed.
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	Action  string    `json:"action,omitempty"`
	Time    time.Time `json:"time,omitzero"`
}

// EventFrame encodes the frame of an event sent to a subscription. An event whose frame
// would be over MaxFrame goes without its data, marked truncated: the subscriber reads it
// from the API instead.
func EventFrame(subscription string, e Event) []byte {
	b, err := jsontext.Marshal(Frame{Kind: KindEvent, Subscription: subscription, Event: &e})
	if err == nil && len(b) <= MaxFrame {
		return b
	}
	e.Data = json.RawMessage(`{"truncated":true}`)
	b, _ = jsontext.Marshal(Frame{Kind: KindEvent, Subscription: subscription, Event: &e})
	return b
}

// ErrorFrame encodes the error frame of a failed request. Internal errors say nothing of
// their cause.
func ErrorFrame(id, action string, err error) []byte {
	b, _ := jsontext.Marshal(Frame{Kind: KindError, ID: id, Action: action, Code: federation.ErrorCode(err), Message: federation.ErrorMessage(err)})
	return b
}

// Encode encodes any other frame.
func Encode(f Frame) []byte {
	b, err := jsontext.Marshal(f)
	if err != nil {
		panic(fmt.Sprintf("events: encode %s frame: %v", f.Kind, err)) // every field is encodable
	}
	return b
}
