package dynamo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

func event(id string) events.Event {
	return events.Event{ID: id, Type: events.AgentAdded, Time: time.Now().UTC(), Subject: "did:web:" + id, Registry: "alpha",
		Data: json.RawMessage(`{"did":"did:web:` + id + `"}`), Audience: events.Audience{Agents: []string{"did:web:" + id}, Registries: []string{"alpha"}}}
}

// Positions are taken in turn, densely, with a conditional head: an event already in the
// log is left out and takes no position; a stale head is a conflict.
func TestEventLogAppend(t *testing.T) {
	ctx := context.Background()
	log := newStore(t).EventLog(time.Hour)
	head, err := log.Head(ctx)
	if err != nil || head != (events.Head{}) {
		t.Fatalf("empty log's head = %+v, %v", head, err)
	}
	got, dup, err := log.Append(ctx, 0, []events.Event{event("e1"), event("e2")})
	if err != nil || len(dup) != 0 || len(got) != 2 || got[0].Position != 1 || got[1].Position != 2 {
		t.Fatalf("append = %+v, %v, %v", got, dup, err)
	}
	// A retried batch: e2 is in the log already, e3 is new and takes position 3.
	got, dup, err = log.Append(ctx, 2, []events.Event{event("e2"), event("e3")})
	if err != nil || !slices.Equal(dup, []string{"e2"}) || len(got) != 1 || got[0].ID != "e3" || got[0].Position != 3 {
		t.Fatalf("append with a duplicate = %+v, %v, %v", got, dup, err)
	}
	if _, _, err := log.Append(ctx, 1, []events.Event{event("e4")}); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Fatalf("append at a stale head: %v, want a conflict", err)
	}
	got, dup, err = log.Append(ctx, 3, []events.Event{event("e1")})
	if err != nil || len(got) != 0 || !slices.Equal(dup, []string{"e1"}) {
		t.Fatalf("append of only duplicates = %+v, %v, %v", got, dup, err)
	}
	head, err = log.Head(ctx)
	if err != nil || head.N != 3 || head.Sent != 0 {
		t.Fatalf("head = %+v, %v", head, err)
	}
	if err := log.MarkSent(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := log.MarkSent(ctx, 2); err != nil { // never backwards, and no error
		t.Fatal(err)
	}
	if head, _ = log.Head(ctx); head.Sent != 3 {
		t.Errorf("sent = %s, want 3", head.Sent)
	}

	all, err := log.Read(ctx, 0, 3, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("read = %+v, %v", all, err)
	}
	for i, e := range all {
		want := event(fmt.Sprint("e", i+1))
		if e.ID != want.ID || e.Position != events.Position(i+1) || e.Type != want.Type || string(e.Data) != string(want.Data) ||
			!slices.Equal(e.Audience.Agents, want.Audience.Agents) || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, e, want)
		}
	}
	if part, _ := log.Read(ctx, 1, 3, 1); len(part) != 1 || part[0].ID != "e2" {
		t.Errorf("read after 1, limit 1 = %+v", part)
	}
	for p, want := range map[events.Position]bool{1: true, 3: true, 4: false} {
		if ok, err := log.Retained(ctx, p); err != nil || ok != want {
			t.Errorf("retained(%d) = %v, %v; want %v", p, ok, err, want)
		}
	}
}

// An event past the retention is not retained, even before TTL deletes it.
func TestEventLogRetention(t *testing.T) {
	ctx := context.Background()
	log := newStore(t).EventLog(time.Nanosecond)
	if _, _, err := log.Append(ctx, 0, []events.Event{event("old")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // expires_at has whole seconds
	if ok, err := log.Retained(ctx, 1); err != nil || ok {
		t.Errorf("retained = %v, %v; want an expired entry to count as gone", ok, err)
	}
}

func TestConnections(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v := events.Viewer{Subject: "did:key:z6Mk1", Acting: []string{"did:web:a"}}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.PutConnection(ctx, events.Connection{ID: "c1=", Viewer: v, ConnectedAt: at}, at.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConnection(ctx, events.Connection{ID: "c2=", Viewer: events.Viewer{Subject: "op", Operator: true}, ConnectedAt: at}, at.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := s.Connection(ctx, "c1=")
	if err != nil || c.Viewer.Subject != v.Subject || !slices.Equal(c.Viewer.Acting, v.Acting) || !c.ConnectedAt.Equal(at) || c.Sub.State != "" {
		t.Fatalf("connection = %+v, %v", c, err)
	}
	if _, err := s.Connection(ctx, "nope"); federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("unknown connection: %v", err)
	}
	if err := s.Subscribe(ctx, "nope", events.Subscription{ID: "s0"}); federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("subscribe an unknown connection: %v", err)
	}

	sub := events.Subscription{ID: "s1", State: events.SubPending, Filter: events.Filter{Types: []string{"agent.*"}, Registry: "beta"}, After: 7, Acting: []string{"did:web:b"}}
	if err := s.Subscribe(ctx, "c1=", sub); err != nil {
		t.Fatal(err)
	}
	c, _ = s.Connection(ctx, "c1=")
	if c.Sub.ID != "s1" || c.Sub.State != events.SubPending || c.Sub.After != 7 || c.Sub.Filter.Registry != "beta" ||
		!slices.Equal(c.Sub.Filter.Types, sub.Filter.Types) || !slices.Equal(c.Sub.Acting, sub.Acting) {
		t.Fatalf("subscription = %+v", c.Sub)
	}
	if live, err := s.Live(ctx); err != nil || len(live) != 0 {
		t.Fatalf("live before going live = %+v, %v", live, err)
	}
	if err := s.ContinueReplay(ctx, "c1=", "s1", 9); err != nil {
		t.Fatal(err)
	}
	if err := s.GoLive(ctx, "c1=", "other", 12); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Errorf("another subscription went live: %v", err)
	}
	if err := s.GoLive(ctx, "c1=", "s1", 12); err != nil {
		t.Fatal(err)
	}
	if err := s.GoLive(ctx, "c1=", "s1", 13); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Errorf("a live subscription went live again: %v", err)
	}
	live, err := s.Live(ctx)
	if err != nil || len(live) != 1 || live[0].ID != "c1=" || live[0].Sub.From != 12 || live[0].Sub.After != 9 {
		t.Fatalf("live = %+v, %v", live, err)
	}
	if err := s.Unsubscribe(ctx, "c1="); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.Live(ctx); len(live) != 0 {
		t.Errorf("live after unsubscribe = %+v", live)
	}
	if err := s.DeleteConnection(ctx, "c1="); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConnection(ctx, "c1="); err != nil {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := s.Connection(ctx, "c1="); federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("deleted connection: %v", err)
	}
}
