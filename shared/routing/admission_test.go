package routing_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/routing"
)

// tableOps are the DynamoDB operations a routed message may make.
var tableOps = []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems"}

// opsNow is what ops counted so far, by operation.
func opsNow(ops *localtest.Ops) map[string]int {
	out := map[string]int{}
	for _, op := range tableOps {
		if n := ops.Calls(op); n > 0 {
			out[op] = n
		}
	}
	return out
}

func minus(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for op, n := range a {
		if d := n - b[op]; d > 0 {
			out[op] = d
		}
	}
	return out
}

// splitDeliverer notes what the table had been asked when the delivery began.
type splitDeliverer struct {
	d   routing.Deliverer
	ops *localtest.Ops
	mu  sync.Mutex
	at  map[string]int
}

func (s *splitDeliverer) Deliver(ctx context.Context, endpoint string, m routing.Message) (json.RawMessage, error) {
	s.mu.Lock()
	s.at = opsNow(s.ops)
	s.mu.Unlock()
	return s.d.Deliver(ctx, endpoint, m)
}

// A routed message makes one DynamoDB round trip before its delivery and one after it:
// the admission's transaction and the record's. The first message of a pair of parties
// reads their records once; the next ones find them in the router's cache.
func TestRoundTripsPerRoutedMessage(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	split := &splitDeliverer{d: f.deliverer, ops: f.ops}
	f.deliverer = split
	r := f.router(t, routing.Options{})
	for i, want := range []struct{ before, after map[string]int }{
		{map[string]int{"BatchGetItem": 1, "TransactWriteItems": 1}, map[string]int{"TransactWriteItems": 1}},
		{map[string]int{"TransactWriteItems": 1}, map[string]int{"TransactWriteItems": 1}},
		{map[string]int{"TransactWriteItems": 1}, map[string]int{"TransactWriteItems": 1}},
	} {
		start := opsNow(f.ops)
		_, err := r.Route(context.Background(), federation.RouteRequest{
			From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{"text":"count me"}`), MessageID: fmt.Sprint("rt-", i),
		}, f.token(t, sender))
		if err != nil {
			t.Fatal(err)
		}
		before, after := minus(split.at, start), minus(opsNow(f.ops), split.at)
		if fmt.Sprint(before) != fmt.Sprint(want.before) || fmt.Sprint(after) != fmt.Sprint(want.after) {
			t.Errorf("message %d: before the delivery %v, after it %v; want %v and %v", i, before, after, want.before, want.after)
		}
	}
}

// keyPair is a self-made did:key that signs fresh credentials.
type keyPair struct {
	did string
	key ed25519.PrivateKey
}

func newKeyPair(t *testing.T) keyPair {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{did: "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, key.Public().(ed25519.PublicKey)...)), key: key}
}

func (k keyPair) token(t *testing.T) federation.Credential {
	t.Helper()
	tok, err := demo.SignToken(k.key, k.did, audience, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return federation.Credential{Type: "jwt", Token: tok}
}

// register writes a directory record of an agent of registry reg, as a sync would.
func (f *fixture) register(t *testing.T, did, reg, status string, identities ...string) {
	t.Helper()
	a := federation.Agent{
		DID: did, Name: "test sender", Registry: reg, SourceID: did, Endpoint: "https://agent.example/a2a", Protocol: "JSONRPC",
		Status: status, Identities: identities, Skills: []federation.Skill{}, Tags: []string{}, Capabilities: []string{},
	}
	if _, err := f.store.PutAgent(context.Background(), a, "", nil); err != nil {
		t.Fatalf("register %s in %s as %s: %v", did, reg, status, err)
	}
}

// The router keeps the parties' records for a while, but a sender's record that changed
// since is caught by the admission's own check: a sender whose registry dropped it, that
// moved to a registry the policy does not let through, or whose card no longer binds the
// credential's identity, is refused by a router that cached it as it was, and nothing
// reaches the target.
func TestCachedSenderChangedIsRefused(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	target := f.counted(t, f.betaTarget(t), &hits)
	r := f.router(t, routing.Options{Allow: []string{"alpha->beta"}})
	tests := []struct {
		name   string
		change func(t *testing.T, sender string)
		says   string
	}{
		{"gone", func(t *testing.T, sender string) { f.register(t, sender, demo.Alpha, federation.StatusGone) }, "status gone"},
		{"stale", func(t *testing.T, sender string) { f.register(t, sender, demo.Alpha, federation.StatusStale) }, "status stale"},
		{"moved to another registry", func(t *testing.T, sender string) {
			f.register(t, sender, demo.Alpha, federation.StatusGone)
			f.register(t, sender, "gamma", federation.StatusActive)
		}, "does not let registry gamma reach registry beta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKeyPair(t)
			f.register(t, k.did, demo.Alpha, federation.StatusActive)
			send := func(id string) error {
				_, err := r.Route(context.Background(), federation.RouteRequest{From: k.did, To: target.DID, Payload: json.RawMessage(`{}`), MessageID: id}, k.token(t))
				return err
			}
			if err := send("before"); err != nil {
				t.Fatalf("while active: %v", err)
			}
			delivered := hits.Load()
			tt.change(t, k.did)
			if err := send("after"); federation.ErrorCode(err) != federation.EFORBIDDEN || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("after the change: %v; want a 403 saying %q", err, tt.says)
			}
			if hits.Load() != delivered {
				t.Error("the message reached the target")
			}
			if _, err := f.store.Claim(context.Background(), k.did, "after"); federation.ErrorCode(err) != federation.ENOTFOUND {
				t.Errorf("the refused message was claimed: %v", err)
			}
		})
	}

	t.Run("identity no longer bound", func(t *testing.T) {
		holder := newKeyPair(t)
		agent := "did:agentvault:test/bound-" + fmt.Sprint(time.Now().UnixNano())
		f.register(t, agent, demo.Alpha, federation.StatusActive, holder.did)
		send := func(id string) error {
			_, err := r.Route(context.Background(), federation.RouteRequest{From: agent, To: target.DID, Payload: json.RawMessage(`{}`), MessageID: id}, holder.token(t))
			return err
		}
		if err := send("bound"); err != nil {
			t.Fatalf("while bound: %v", err)
		}
		f.register(t, agent, demo.Alpha, federation.StatusActive) // the card no longer names holder
		if err := send("unbound"); federation.ErrorCode(err) != federation.EFORBIDDEN || !strings.Contains(err.Error(), "may not send as") {
			t.Errorf("after the card dropped the identity: %v; want a 403", err)
		}
	})

	// A record that comes back is not refused from memory: refusals always read.
	t.Run("back", func(t *testing.T) {
		k := newKeyPair(t)
		f.register(t, k.did, demo.Alpha, federation.StatusStale)
		if _, err := r.Route(context.Background(), federation.RouteRequest{From: k.did, To: target.DID, Payload: json.RawMessage(`{}`)}, k.token(t)); federation.ErrorCode(err) != federation.EFORBIDDEN {
			t.Fatalf("while stale: %v", err)
		}
		f.register(t, k.did, demo.Alpha, federation.StatusActive)
		if _, err := r.Route(context.Background(), federation.RouteRequest{From: k.did, To: target.DID, Payload: json.RawMessage(`{}`)}, k.token(t)); err != nil {
			t.Errorf("active again: %v", err)
		}
	})
}

// A credential is accepted once, whatever its first request was answered: delivered,
// a duplicate, refused by the policy or by a limit. Its jti is claimed in the
// admission's transaction, or alone when nothing is admitted.
func TestCredentialsAreAcceptedOnce(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	target := f.counted(t, f.betaTarget(t), &hits)
	k := newKeyPair(t)
	f.register(t, k.did, demo.Alpha, federation.StatusActive)
	open := f.router(t, routing.Options{AgentRate: 1000})
	ctx := context.Background()
	msg := func(id string) federation.RouteRequest {
		return federation.RouteRequest{From: k.did, To: target.DID, Payload: json.RawMessage(`{"n":1}`), MessageID: id}
	}
	if _, err := open.Route(ctx, msg("first"), k.token(t)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		first func(cred federation.Credential) error
	}{
		{"delivered", func(cred federation.Credential) error { _, err := open.Route(ctx, msg("delivered"), cred); return err }},
		{"duplicate", func(cred federation.Credential) error {
			res, err := open.Route(ctx, msg("first"), cred)
			if err == nil && !res.Duplicate {
				return fmt.Errorf("not a duplicate: %+v", res)
			}
			return err
		}},
		{"refused by the policy", func(cred federation.Credential) error {
			_, err := f.router(t, routing.Options{Allow: []string{"beta->alpha"}}).Route(ctx, msg("policy"), cred)
			return want(err, federation.EFORBIDDEN)
		}},
		{"rate limited", func(cred federation.Credential) error {
			// The sender's minute is already used up by "first" under a limit of 1.
			_, err := f.router(t, routing.Options{AgentRate: 1}).Route(ctx, msg("limited"), cred)
			return want(err, federation.ERATELIMITED)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := k.token(t)
			if err := tt.first(cred); err != nil {
				t.Fatalf("first use: %v", err)
			}
			before := hits.Load()
			_, err := open.Route(ctx, msg("again-"+strings.ReplaceAll(tt.name, " ", "-")), cred)
			if federation.ErrorCode(err) != federation.EUNAUTHORIZED || federation.ErrorMessage(err) != "replayed jti" {
				t.Errorf("the credential used again: %v; want 401 replayed jti", err)
			}
			if hits.Load() != before {
				t.Error("the replay reached the target")
			}
		})
	}
}

func want(err error, code string) error {
	if federation.ErrorCode(err) != code {
		return fmt.Errorf("%v; want %s", err, code)
	}
	return nil
}

// The global limit, counted in shards across several function instances, never admits
// more than the limit in a minute, and is used up before messages are refused: a shard
// found full sends the admission to the next one.
func TestShardedGlobalLimit(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	const (
		limit     = 48
		shards    = 8
		instances = 3
		attempts  = 2 * limit
	)
	minute := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	routers := make([]*routing.Router, instances)
	for i := range routers {
		routers[i] = f.router(t, routing.Options{
			GlobalRate: limit, GlobalShards: shards, AgentRate: 1000,
			Clock: func() time.Time { return minute.Add(10 * time.Second) },
		})
	}
	senders := make([]keyPair, 6)
	for i := range senders {
		senders[i] = newKeyPair(t)
		f.register(t, senders[i].did, demo.Alpha, federation.StatusActive)
	}
	creds := make([]federation.Credential, attempts)
	for i := range creds {
		creds[i] = senders[i%len(senders)].token(t)
	}

	var (
		next, admitted, refusedEarly atomic.Int32
		firstRefusal                 = int32(-1)
		mu                           sync.Mutex
		wg                           sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := routers[w%instances]
			for {
				i := int(next.Add(1)) - 1
				if i >= attempts {
					return
				}
				s := senders[i%len(senders)]
				_, err := r.Route(context.Background(), federation.RouteRequest{
					From: s.did, To: target.DID, Payload: json.RawMessage(`{}`), MessageID: fmt.Sprint("g-", i),
				}, creds[i])
				switch federation.ErrorCode(err) {
				case "":
					admitted.Add(1)
				case federation.ERATELIMITED:
					mu.Lock()
					if firstRefusal < 0 {
						firstRefusal = admitted.Load()
					}
					mu.Unlock()
					if admitted.Load() < limit {
						refusedEarly.Add(1)
					}
				default:
					t.Errorf("message %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d admitted of %d sent under a limit of %d in %d shards; first refusal after %d, %d refused while the limit was not reached",
		admitted.Load(), attempts, limit, shards, firstRefusal, refusedEarly.Load())
	if admitted.Load() != limit {
		t.Errorf("%d messages admitted in the minute; want the limit, %d, exactly", admitted.Load(), limit)
	}
	if firstRefusal < limit*2/3 {
		t.Errorf("the first refusal came after %d messages; want none before %d (two thirds of the limit)", firstRefusal, limit*2/3)
	}
}
