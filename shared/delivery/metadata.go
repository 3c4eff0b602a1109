package delivery

import (
	"bytes"
	"encoding/json"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Message metadata keys. The gateway sets every one on a message it forwards (verified_by
// and payload_wrapped only when they apply); a caller of the gateway's own A2A endpoint
// sets federation.to, and may set federation.message_id, federation.from,
// federation.source_registry and federation.skill.
const (
	MetaMessageID      = "federation.message_id"      // string: the federation message ID (also the A2A messageId)
	MetaFrom           = "federation.from"            // string: the sender's DID
	MetaTo             = "federation.to"              // string: the target's DID
	MetaSourceRegistry = "federation.source_registry" // string: the sender's registry
	MetaTargetRegistry = "federation.target_registry" // string: the target's registry
	MetaGateway        = "federation.gateway"         // string: the ID of the gateway that forwarded it
	MetaVerifiedBy     = "federation.verified_by"     // object {"method", "subject"}: how the gateway verified the sender
	MetaSignature      = "federation.signature"       // string: the compact JWS, see Claims
	// MetaPayloadWrapped is true when the payload is not a JSON object and the data part
	// carries it as {"value": <payload>}.
	MetaPayloadWrapped = "federation.payload_wrapped"
	// MetaPayloadForm is PayloadParts when the message carries the parts an A2A client
	// sent the gateway, as they were sent, rather than one data part with the payload.
	MetaPayloadForm = "federation.payload_form"
	// MetaSkill names the gateway skill a message to the gateway asks for: route (the
	// default), discover or broadcast.
	MetaSkill = "federation.skill"
	// MetaCorrelationID is the correlation ID of the request that sent the message (see
	// package correlation): the one in the caller's answer and in the gateway's logs.
	MetaCorrelationID = correlation.MetaKey
	// MetaTraceparent is the W3C traceparent of the delivery: the caller's trace when it
	// sent one, with the gateway's span as parent. The HTTP request carries it too.
	MetaTraceparent = correlation.Header
)

// PayloadParts is the value of MetaPayloadForm for a message that carries its sender's
// parts.
const PayloadParts = "parts"

// ReadForwarded reads back, from an A2A message the gateway forwarded, the Message it
// sent and its federation.signature token, ready for VerifyForwarded. The payload is the
// message's one data part, unwrapped when federation.payload_wrapped says so; or, when
// federation.payload_form is "parts", the list of its parts. Errors: EINVALID when the
// message lacks the federation metadata or the data part.
func ReadForwarded(msg *a2a.Message) (Message, string, error) {
	if msg == nil {
		return Message{}, "", federation.Errorf(federation.EINVALID, "no message")
	}
	meta := msg.Metadata
	str := func(key string) string {
		s, _ := meta[key].(string)
		return s
	}
	m := Message{
		ID: str(MetaMessageID), From: str(MetaFrom), To: str(MetaTo),
		SourceRegistry: str(MetaSourceRegistry), TargetRegistry: str(MetaTargetRegistry),
	}
	if vb, ok := meta[MetaVerifiedBy].(map[string]any); ok {
		m.VerifiedBy, _ = vb["method"].(string)
		m.Subject, _ = vb["subject"].(string)
	}
	token := str(MetaSignature)
	if m.ID == "" || token == "" {
		return Message{}, "", federation.Errorf(federation.EINVALID, "the message carries no %s or %s metadata: it did not come through a federation gateway", MetaMessageID, MetaSignature)
	}
	if form, _ := meta[MetaPayloadForm].(string); form == PayloadParts {
		parts := make([]*a2a.Part, 0, len(msg.Parts))
		for _, p := range msg.Parts {
			if p != nil {
				parts = append(parts, p)
			}
		}
		payload, err := json.Marshal(parts)
		if err != nil {
			return Message{}, "", federation.Wrap(federation.EINVALID, err, "the parts are not JSON")
		}
		m.Payload, m.Parts = payload, true
		return m, token, nil
	}
	var data []*a2a.Part
	for _, p := range msg.Parts {
		if p != nil {
			if _, ok := p.Content.(a2a.Data); ok {
				data = append(data, p)
			}
		}
	}
	if len(data) != 1 {
		return Message{}, "", federation.Errorf(federation.EINVALID, "want one data part, the message has %d", len(data))
	}
	payload, err := json.Marshal(data[0].Data())
	if err != nil {
		return Message{}, "", federation.Wrap(federation.EINVALID, err, "the data part is not JSON")
	}
	if wrapped, _ := meta[MetaPayloadWrapped].(bool); wrapped {
		var w map[string]json.RawMessage
		if err := json.Unmarshal(payload, &w); err != nil || w["value"] == nil {
			return Message{}, "", federation.Errorf(federation.EINVALID, "%s is set but the data part is not {\"value\": ...}", MetaPayloadWrapped)
		}
		payload = w["value"]
	}
	m.Payload = payload
	return m, token, nil
}

// isObject reports whether payload is a JSON object (it is known to be valid JSON).
func isObject(payload []byte) bool {
	b := bytes.TrimLeft(payload, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
