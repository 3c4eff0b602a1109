package events_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

func agent(status, hash string) *federation.Agent {
	return &federation.Agent{DID: "did:web:a.example", Name: "A", Registry: "alpha", Status: status, ContentHash: hash}
}

func TestDerive(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	reg := func(healthy bool) *federation.RegistryState {
		return &federation.RegistryState{ID: "beta", Healthy: healthy, ConsecutiveFailures: map[bool]int{true: 0, false: 2}[healthy]}
	}
	msg := func(status string) *events.Message {
		return &events.Message{ID: "m1", From: "did:key:z1", To: "did:web:t", Status: status, TargetRegistry: "beta"}
	}
	xfer := func(status string) *events.Transfer {
		return &events.Transfer{ID: "br-1", Status: status, From: "did:key:z1", To: "did:web:t", Sender: "did:key:z1", Lane: "alpha->beta",
			SourceRegistry: "alpha", TargetRegistry: "beta", Amount: "25.0"}
	}
	tests := []struct {
		name    string
		change  events.Change
		typ     string // "" for no event
		subject string
		parties []string
	}{
		{"agent listed", events.Change{Agent: &events.AgentChange{New: agent("active", "h1")}}, events.AgentAdded, "did:web:a.example", nil},
		{"agent's card changed", events.Change{Agent: &events.AgentChange{Old: agent("active", "h1"), New: agent("active", "h2")}}, events.AgentChanged, "did:web:a.example", nil},
		{"agent resynced unchanged", events.Change{Agent: &events.AgentChange{Old: agent("active", "h1"), New: agent("active", "h1")}}, "", "", nil},
		{"agent stale", events.Change{Agent: &events.AgentChange{Old: agent("active", "h1"), New: agent("stale", "h1")}}, events.AgentStale, "did:web:a.example", nil},
		{"agent gone", events.Change{Agent: &events.AgentChange{Old: agent("stale", "h1"), New: agent("gone", "h1")}}, events.AgentGone, "did:web:a.example", nil},
		{"agent back from stale", events.Change{Agent: &events.AgentChange{Old: agent("stale", "h1"), New: agent("active", "h1")}}, events.AgentBack, "did:web:a.example", nil},
		{"agent back from gone", events.Change{Agent: &events.AgentChange{Old: agent("gone", "h1"), New: agent("active", "h2")}}, events.AgentBack, "did:web:a.example", nil},
		{"gone agent expired", events.Change{Agent: &events.AgentChange{Old: agent("gone", "h1")}}, "", "", nil},
		{"registry failed", events.Change{Registry: &events.RegistryChange{Old: reg(true), New: reg(false)}}, events.RegistryUnhealthy, "beta", nil},
		{"registry failed at its first sync", events.Change{Registry: &events.RegistryChange{New: reg(false)}}, events.RegistryUnhealthy, "beta", nil},
		{"registry failed again", events.Change{Registry: &events.RegistryChange{Old: reg(false), New: reg(false)}}, "", "", nil},
		{"registry recovered", events.Change{Registry: &events.RegistryChange{Old: reg(false), New: reg(true)}}, events.RegistryHealthy, "beta", nil},
		{"registry synced", events.Change{Registry: &events.RegistryChange{Old: reg(true), New: reg(true)}}, "", "", nil},
		{"message delivered", events.Change{Message: &events.MessageChange{Old: msg("pending"), New: msg("delivered")}}, events.MessageDelivered, "m1", []string{"did:key:z1", "did:web:t"}},
		{"message failed", events.Change{Message: &events.MessageChange{Old: msg("pending"), New: msg("failed")}}, events.MessageFailed, "m1", []string{"did:key:z1", "did:web:t"}},
		{"message claimed", events.Change{Message: &events.MessageChange{New: msg("pending")}}, "", "", nil},
		{"failed message claimed again", events.Change{Message: &events.MessageChange{Old: msg("failed"), New: msg("pending")}}, "", "", nil},
		{"transfer accepted", events.Change{Transfer: &events.TransferChange{New: xfer("pending")}}, "bridge.pending", "br-1", []string{"did:key:z1", "did:web:t", "did:key:z1"}},
		{"transfer minted", events.Change{Transfer: &events.TransferChange{Old: xfer("reserved"), New: xfer("minted")}}, "bridge.minted", "br-1", []string{"did:key:z1", "did:web:t", "did:key:z1"}},
		{"transfer's steps recorded", events.Change{Transfer: &events.TransferChange{Old: xfer("minted"), New: xfer("minted")}}, "", "", nil},
		{"lane paused", events.Change{Lane: &events.LaneChange{Old: &events.Lane{ID: "alpha->beta", From: "alpha", To: "beta"}, New: &events.Lane{ID: "alpha->beta", From: "alpha", To: "beta", Paused: true}}}, events.LanePaused, "alpha->beta", nil},
		{"lane resumed", events.Change{Lane: &events.LaneChange{Old: &events.Lane{ID: "a->b", Paused: true}, New: &events.Lane{ID: "a->b"}}}, events.LaneResumed, "a->b", nil},
		{"lane created", events.Change{Lane: &events.LaneChange{New: &events.Lane{ID: "a->b"}}}, "", "", nil},
		{"liquidity low", events.Change{Book: &events.BookChange{Old: &events.Book{Registry: "beta"}, New: &events.Book{Registry: "beta", Low: true}}}, events.LaneLowLiquidity, "beta", nil},
		{"liquidity still low", events.Change{Book: &events.BookChange{Old: &events.Book{Registry: "beta", Low: true}, New: &events.Book{Registry: "beta", Low: true}}}, "", "", nil},
		{"subscription", events.Change{Subscription: &events.SubscriptionChange{Connection: "c", Subscription: "s"}}, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change.EventID, tt.change.Time = "rec-1", at
			evs := events.Derive(tt.change)
			if tt.typ == "" {
				if len(evs) != 0 {
					t.Fatalf("events %+v, want none", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			e := evs[0]
			if e.ID != "rec-1" || e.Type != tt.typ || e.Subject != tt.subject || !e.Time.Equal(at) || !json.Valid(e.Data) ||
				!slices.Equal(e.Audience.Parties, tt.parties) {
				t.Errorf("event %+v", e)
			}
			if !events.KnownType(e.Type) {
				t.Errorf("type %s is not among events.Types()", e.Type)
			}
		})
	}
}

// What an event tells: the sender of a transfer is a party but not part of its data.
func TestDeriveData(t *testing.T) {
	evs := events.Derive(events.Change{EventID: "r", Transfer: &events.TransferChange{New: &events.Transfer{ID: "br-9", Status: "pending",
		From: "did:key:a", To: "did:web:b", Sender: "spiffe://td/sender", Lane: "alpha->beta", SourceRegistry: "alpha", TargetRegistry: "beta", Amount: "25.0"}}})
	var data map[string]any
	if err := json.Unmarshal(evs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["transfer_id"] != "br-9" || data["amount"] != "25.0" || data["lane"] != "alpha->beta" || data["Sender"] != nil || data["sender"] != nil {
		t.Errorf("data %s", evs[0].Data)
	}
	if evs[0].Audience.Transfer != "br-9" || !slices.Contains(evs[0].Audience.Parties, "spiffe://td/sender") ||
		!slices.Equal(evs[0].Audience.Registries, []string{"alpha", "beta"}) {
		t.Errorf("audience %+v", evs[0].Audience)
	}
}

func TestFilterAndViewer(t *testing.T) {
	msg := events.Event{Type: events.MessageDelivered, Audience: events.Audience{Parties: []string{"did:a", "did:b"}, Agents: []string{"did:a", "did:b"}, Registries: []string{"beta"}}}
	pub := events.Event{Type: events.AgentAdded, Audience: events.Audience{Agents: []string{"did:c"}, Registries: []string{"alpha"}}}
	xfer := events.Event{Type: "bridge.completed", Audience: events.Audience{Parties: []string{"did:a"}, Transfer: "br-1", Registries: []string{"alpha", "beta"}}}
	for _, tt := range []struct {
		name   string
		filter events.Filter
		e      events.Event
		want   bool
	}{
		{"empty filter", events.Filter{}, msg, true},
		{"exact type", events.Filter{Types: []string{events.MessageDelivered}}, msg, true},
		{"other type", events.Filter{Types: []string{events.MessageFailed}}, msg, false},
		{"family", events.Filter{Types: []string{"agent.*"}}, pub, true},
		{"family is not a prefix of another", events.Filter{Types: []string{"bridge.*"}}, pub, false},
		{"registry", events.Filter{Registry: "alpha"}, pub, true},
		{"other registry", events.Filter{Registry: "beta"}, pub, false},
		{"any registry of a transfer", events.Filter{Registry: "beta"}, xfer, true},
		{"agent", events.Filter{Agent: "did:b"}, msg, true},
		{"transfer", events.Filter{Transfer: "br-1"}, xfer, true},
		{"other transfer", events.Filter{Transfer: "br-2"}, xfer, false},
		{"all must match", events.Filter{Types: []string{"agent.*"}, Registry: "beta"}, pub, false},
	} {
		if got := tt.filter.Match(tt.e); got != tt.want {
			t.Errorf("%s: Match = %v", tt.name, got)
		}
	}
	for _, tt := range []struct {
		name string
		v    events.Viewer
		e    events.Event
		want bool
	}{
		{"anyone sees directory events", events.Viewer{Subject: "did:x"}, pub, true},
		{"a stranger does not see a message", events.Viewer{Subject: "did:x"}, msg, false},
		{"its sender does", events.Viewer{Subject: "did:a"}, msg, true},
		{"its target does", events.Viewer{Subject: "did:b"}, msg, true},
		{"who acts for a party does", events.Viewer{Subject: "spiffe://td/x", Acting: []string{"did:b"}}, msg, true},
		{"an operator does", events.Viewer{Subject: "op", Operator: true}, msg, true},
		{"a stranger does not see a transfer", events.Viewer{Subject: "did:b"}, xfer, false},
		{"an empty subject matches nothing", events.Viewer{}, events.Event{Audience: events.Audience{Parties: []string{""}}}, false},
	} {
		if got := tt.v.CanSee(tt.e); got != tt.want {
			t.Errorf("%s: CanSee = %v", tt.name, got)
		}
	}
}
