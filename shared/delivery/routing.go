package delivery

import (
	"context"
	"encoding/json"

	"github.com/federation-gateway/gateway/shared/routing"
)

// ForRouting is a Deliverer as the routing sees one.
type ForRouting struct{ D *Deliverer }

var _ routing.Deliverer = ForRouting{}

// Deliver implements routing.Deliverer: it returns the summary of the target's answer.
func (f ForRouting) Deliver(ctx context.Context, endpoint string, m routing.Message) (json.RawMessage, error) {
	out, err := f.D.Deliver(ctx, endpoint, Message{
		ID: m.ID, From: m.From, To: m.To, SourceRegistry: m.SourceRegistry, TargetRegistry: m.TargetRegistry,
		Payload: m.Payload, Parts: m.Parts, VerifiedBy: m.VerifiedBy.Method, Subject: m.VerifiedBy.Subject,
	})
	return out.Summary, err
}
