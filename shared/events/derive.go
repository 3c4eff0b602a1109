package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/jsontext"
)

// Change is one change of an item that can make events, as the table's stream reports
// it: the item before and after (nil when it did not exist). Exactly one of the item
// fields is set.
type Change struct {
	EventID string    // the stream record's ID: the ID of the events it makes
	Seq     string    // the stream record's sequence number
	Time    time.Time // when the change happened, as the stream approximates it

	Agent    *AgentChange
	Registry *RegistryChange
	Message  *MessageChange
	Transfer *TransferChange
	Lane     *LaneChange
	Book     *BookChange
	// Subscription is a subscription waiting to be served; it makes no event.
	Subscription *SubscriptionChange
}

// AgentChange is a change of an agent's directory record.
type AgentChange struct{ Old, New *federation.Agent }

// RegistryChange is a change of what the sync recorded of a registry.
type RegistryChange struct{ Old, New *federation.RegistryState }

// MessageChange is a change of a routed message's delivery record.
type MessageChange struct{ Old, New *Message }

// Message is what the events of a routed message tell of it.
type Message struct {
	ID             string `json:"message_id"`
	From           string `json:"from"`
	To             string `json:"to"`
	Status         string `json:"status"` // pending, delivered, failed
	SourceRegistry string `json:"source_registry,omitempty"`
	TargetRegistry string `json:"target_registry,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Fee            string `json:"fee,omitempty"`
}

// TransferChange is a change of a bridge transfer.
type TransferChange struct{ Old, New *Transfer }

// Transfer is what the events of a bridge transfer tell of it. Amounts are decimal
// strings.
type Transfer struct {
	ID             string `json:"transfer_id"`
	Status         string `json:"status"`
	Step           string `json:"step,omitempty"`
	From           string `json:"from"`
	To             string `json:"to"`
	Sender         string `json:"-"` // the verified identity that asked for it: a party
	Lane           string `json:"lane"`
	SourceRegistry string `json:"source_registry"`
	TargetRegistry string `json:"target_registry"`
	Amount         string `json:"amount,omitempty"`
	Fee            string `json:"fee,omitempty"`
	Minted         string `json:"minted,omitempty"`
	Refunded       string `json:"refunded,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

// LaneChange is a change of a bridge lane.
type LaneChange struct{ Old, New *Lane }

// Lane is a bridge lane's switch.
type Lane struct {
	ID     string `json:"lane"` // from->to
	From   string `json:"from"`
	To     string `json:"to"`
	Paused bool   `json:"paused"`
}

// BookChange is a change of the gateway's books on a registry.
type BookChange struct{ Old, New *Book }

// Book is the gateway's liquidity on a registry, decimal strings.
type Book struct {
	Registry  string `json:"registry"`
	Liquidity string `json:"liquidity"`
	Low       bool   `json:"low_liquidity"`
}

// SubscriptionChange names a subscription written by a subscribe.
type SubscriptionChange struct {
	Connection   string
	Subscription string
}

// Derive returns the events a change makes: none for most changes (a resync that
// changes nothing, a write of an attribute no event is about).
func Derive(c Change) []Event {
	var evs []Event
	add := func(typ, subject, registry string, data any, aud Audience) {
		raw, err := jsontext.Marshal(data)
		if err != nil {
			raw = json.RawMessage(`{}`)
		}
		id := c.EventID
		if len(evs) > 0 {
			id = fmt.Sprintf("%s#%d", c.EventID, len(evs)+1)
		}
		evs = append(evs, Event{ID: id, Type: typ, Time: c.Time.UTC(), Subject: subject, Registry: registry, Data: raw, Audience: aud})
	}
	switch {
	case c.Agent != nil:
		if typ := agentType(c.Agent.Old, c.Agent.New); typ != "" {
			a := c.Agent.New
			d := agentData{DID: a.DID, Name: a.Name, Registry: a.Registry, Status: a.Status, ServiceType: a.ServiceType,
				Endpoint: a.Endpoint, Capabilities: a.Capabilities, Tags: a.Tags, LastSeen: a.LastSeen}
			if c.Agent.Old != nil {
				d.Previous = c.Agent.Old.Status
			}
			add(typ, a.DID, a.Registry, d, Audience{Agents: []string{a.DID}, Registries: []string{a.Registry}})
		}
	case c.Registry != nil:
		o, n := c.Registry.Old, c.Registry.New
		var typ string
		switch {
		case n == nil:
		case !n.Healthy && (o == nil || o.Healthy):
			typ = RegistryUnhealthy
		case n.Healthy && o != nil && !o.Healthy:
			typ = RegistryHealthy
		}
		if typ != "" {
			d := registryData{ID: n.ID, Healthy: n.Healthy, LastError: n.LastError, ConsecutiveFailures: n.ConsecutiveFailures, Agents: n.Agents}
			if !n.LastSync.IsZero() {
				t := n.LastSync.UTC()
				d.LastSync = &t
			}
			add(typ, n.ID, n.ID, d, Audience{Registries: []string{n.ID}})
		}
	case c.Message != nil:
		o, n := c.Message.Old, c.Message.New
		if n != nil && o != nil && o.Status == "pending" && (n.Status == "delivered" || n.Status == "failed") {
			typ := MessageDelivered
			if n.Status == "failed" {
				typ = MessageFailed
			}
			add(typ, n.ID, n.TargetRegistry, n, Audience{Parties: nonEmpty(n.From, n.To), Agents: nonEmpty(n.From, n.To),
				Registries: nonEmpty(n.SourceRegistry, n.TargetRegistry)})
		}
	case c.Transfer != nil:
		o, n := c.Transfer.Old, c.Transfer.New
		if n != nil && n.Status != "" && (o == nil || o.Status != n.Status) {
			add(BridgePrefix+n.Status, n.ID, n.SourceRegistry, n, Audience{Parties: nonEmpty(n.From, n.To, n.Sender),
				Agents: nonEmpty(n.From, n.To), Registries: nonEmpty(n.SourceRegistry, n.TargetRegistry), Transfer: n.ID})
		}
	case c.Lane != nil:
		o, n := c.Lane.Old, c.Lane.New
		if n != nil && n.Paused != (o != nil && o.Paused) {
			typ := LanePaused
			if !n.Paused {
				typ = LaneResumed
			}
			add(typ, n.ID, n.From, n, Audience{Registries: nonEmpty(n.From, n.To)})
		}
	case c.Book != nil:
		o, n := c.Book.Old, c.Book.New
		if n != nil && n.Low && (o == nil || !o.Low) {
			add(LaneLowLiquidity, n.Registry, n.Registry, n, Audience{Registries: []string{n.Registry}})
		}
	}
	return evs
}

// agentType is the event of an agent record's change, or "".
func agentType(o, n *federation.Agent) string {
	switch {
	case n == nil:
		return "" // the record expired: its agent.gone came when it went
	case o == nil:
		if n.Status == federation.StatusActive {
			return AgentAdded
		}
		return ""
	case o.Status != n.Status:
		switch n.Status {
		case federation.StatusActive:
			return AgentBack
		case federation.StatusStale:
			return AgentStale
		case federation.StatusGone:
			return AgentGone
		}
		return ""
	case n.Status == federation.StatusActive && (o.ContentHash != n.ContentHash || o.Registry != n.Registry):
		return AgentChanged
	}
	return ""
}

type agentData struct {
	DID          string    `json:"did"`
	Name         string    `json:"name"`
	Registry     string    `json:"registry"`
	Status       string    `json:"status"`
	Previous     string    `json:"previous_status,omitempty"`
	ServiceType  string    `json:"service_type,omitempty"`
	Endpoint     string    `json:"endpoint,omitempty"`
	Capabilities []string  `json:"capabilities,omitempty"`
	Tags         []string  `json:"tags,omitempty"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
}

type registryData struct {
	ID                  string                 `json:"id"`
	Healthy             bool                   `json:"healthy"`
	LastError           string                 `json:"last_error,omitempty"`
	ConsecutiveFailures int                    `json:"consecutive_failures"`
	Agents              federation.AgentCounts `json:"agents"`
	LastSync            *time.Time             `json:"last_sync,omitempty"`
}

func nonEmpty(ss ...string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
