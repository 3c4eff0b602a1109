package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/routing"
)

// The global-limit runs' settings.
const (
	// shardSenders are registered senders the runs spread their messages over, so that
	// no sender's own counter is the item every message updates.
	shardSenders = 16
	// shardConcurrency is the messages in flight, over shardInstances Routers (function
	// instances, each with its cache and its knowledge of full shards).
	shardConcurrency = 16
	shardInstances   = 4
	// shardMessages are sent in each throughput run; the saturation runs send 1.5 times
	// saturationLimit.
	shardMessages   = 800
	saturationLimit = 600
)

// shardRun is messages admitted against the global limit with a number of shards.
type shardRun struct {
	Shards, Limit int // the limit a minute
	Sent          int
	Admitted      int
	Refused       int // 429
	// FirstRefusal is how many were admitted when the first was refused; -1 for none.
	FirstRefusal int
	Errors       map[string]int
	Took         time.Duration
	CutShort     bool
}

// instantDeliverer answers every delivery at once: the global-limit runs measure
// admission, not agents.
type instantDeliverer struct{}

func (instantDeliverer) Deliver(context.Context, string, routing.Message) (json.RawMessage, error) {
	return json.RawMessage(`{"kind":"message"}`), nil
}

// globalLimit measures the global limit with one shard and with several: how many
// messages a second the local endpoint admits (a transaction before the delivery, which
// answers at once, and one after), and how close to the limit a minute's admissions come
// when more are sent than it allows.
func (b *routingBench) globalLimit(ctx context.Context) error {
	progress("routing: global limit, %d messages per run over %d senders, %d in flight", shardMessages, shardSenders, shardConcurrency)
	store := dynamo.NewStore(dynamo.NewClient(devstack.LocalAWSConfig(b.stack.EndpointURL), true), b.stack.Template.Tables[0].Name)
	senders, err := registerSenders(ctx, store, shardSenders)
	if err != nil {
		return err
	}
	// Each run counts in a minute of its own, fixed, so that no run shares a counter with
	// another or sees its minute turn.
	minute := time.Now().Truncate(time.Minute).Add(24 * time.Hour)
	runs := []struct{ shards, limit, count int }{
		{1, raisedRate, shardMessages},
		{16, raisedRate, shardMessages},
		{1, saturationLimit, saturationLimit * 3 / 2},
		{8, saturationLimit, saturationLimit * 3 / 2},
	}
	for _, r := range runs {
		minute = minute.Add(time.Minute)
		run, err := b.shardRun(ctx, store, senders, r.shards, r.limit, r.count, minute)
		if err != nil {
			return err
		}
		b.results.Shards = append(b.results.Shards, run)
	}
	return nil
}

// sender is a registered agent with the key its credentials are signed with.
type sender struct {
	did string
	key ed25519.PrivateKey
}

// registerSenders writes n agents of registry alpha into the directory, as a sync would.
func registerSenders(ctx context.Context, store *dynamo.Store, n int) ([]sender, error) {
	out := make([]sender, n)
	for i := range out {
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		did := "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, key.Public().(ed25519.PublicKey)...))
		a := federation.Agent{
			DID: did, Name: fmt.Sprint("bench sender ", i), Registry: demo.Alpha, SourceID: did, Endpoint: "https://agent.example/a2a",
			Protocol: "JSONRPC", Status: federation.StatusActive, Skills: []federation.Skill{}, Tags: []string{}, Capabilities: []string{}, Identities: []string{},
		}
		if _, err := store.PutAgent(ctx, a, "", nil); err != nil {
			return nil, fmt.Errorf("register a bench sender: %w", err)
		}
		out[i] = sender{did: did, key: key}
	}
	return out, nil
}

// shardRun sends count messages with shardConcurrency senders over shardInstances
// Routers whose global limit is limit a minute in shards shards, within throughputLimit.
func (b *routingBench) shardRun(ctx context.Context, store *dynamo.Store, senders []sender, shards, limit, count int, at time.Time) (shardRun, error) {
	run := shardRun{Shards: shards, Limit: limit, FirstRefusal: -1, Errors: map[string]int{}}
	routers := make([]*routing.Router, shardInstances)
	for i := range routers {
		verifier, err := identity.NewVerifier(identity.Options{Audience: b.audience, Replay: store.ReplayGuard()})
		if err != nil {
			return run, err
		}
		if routers[i], err = routing.New(verifier, store, instantDeliverer{}, routing.Options{
			AgentRate: raisedRate, GlobalRate: limit, GlobalShards: shards, Clock: func() time.Time { return at },
		}, logs.New(io.Discard, "error")); err != nil {
			return run, err
		}
	}
	type call struct {
		req  federation.RouteRequest
		cred federation.Credential
	}
	calls := make([]call, count)
	for i := range calls {
		s := senders[i%len(senders)]
		tok, err := demo.SignToken(s.key, s.did, b.audience, tokenTTL)
		if err != nil {
			return run, err
		}
		calls[i] = call{
			req:  federation.RouteRequest{From: s.did, To: b.target.DID, Payload: json.RawMessage(`{}`), MessageID: fmt.Sprintf("shard-%s-%d-%d-%d", b.run, shards, limit, i)},
			cred: federation.Credential{Type: "jwt", Token: tok},
		}
	}

	ctx, cancel := context.WithTimeout(ctx, throughputLimit)
	defer cancel()
	var (
		next, sent, admitted atomic.Int64
		mu                   sync.Mutex
		wg                   sync.WaitGroup
	)
	start := time.Now()
	for w := range shardConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := routers[w%len(routers)]
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(calls) {
					return
				}
				sent.Add(1)
				res, err := r.Route(ctx, calls[i].req, calls[i].cred)
				if ctx.Err() != nil {
					return
				}
				if err == nil && res.Duplicate {
					err = fmt.Errorf("%s was admitted before", calls[i].req.MessageID)
				}
				mu.Lock()
				switch federation.ErrorCode(err) {
				case "":
					admitted.Add(1)
				case federation.ERATELIMITED:
					run.Refused++
					if run.FirstRefusal < 0 {
						run.FirstRefusal = int(admitted.Load())
					}
				default:
					run.Errors[errorKind(err)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	run.Took, run.CutShort = time.Since(start), ctx.Err() != nil
	run.Sent, run.Admitted = int(sent.Load()), int(admitted.Load())
	return run, nil
}
