package routing_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
	"github.com/federation-gateway/gateway/shared/routing"
)

const audience = "federation-gateway"

// fixture is the demo federation synced into a fresh table, with the real verifier and
// deliverer: what the route function runs, minus the HTTP API.
type fixture struct {
	fed       *demo.Federation
	store     *dynamo.Store
	ops       *localtest.Ops
	verifier  *identity.Verifier
	deliverer routing.Deliverer
	jwks      []byte
	// clock is the routers' clock (localtest.MinuteClock).
	clock func() time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	seed, err := delivery.GenerateKeyJWK()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := delivery.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(signer.JWKS()) }))
	t.Cleanup(gw.Close)
	fed, store, ops := localtest.Federation(t, gw.URL)
	f := &fixture{fed: fed, store: store, ops: ops, jwks: signer.JWKS(), clock: localtest.MinuteClock()}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	if f.verifier, err = identity.NewVerifier(identity.Options{Audience: audience, Replay: f.store.ReplayGuard()}); err != nil {
		t.Fatal(err)
	}
	f.deliverer = delivery.ForRouting{D: delivery.New(httpClient, signer, audience)}
	return f
}

func (f *fixture) router(t *testing.T, opts routing.Options) *routing.Router {
	t.Helper()
	if opts.DeliveryBudget == 0 {
		opts.DeliveryBudget = 2 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = f.clock
	}
	r, err := routing.New(f.verifier, f.store, f.deliverer, opts, logs.New(&bytes.Buffer{}, "error"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// token is a fresh credential of a demo agent with a did:key.
func (f *fixture) token(t *testing.T, hrid string) federation.Credential {
	t.Helper()
	a := f.fed.Agent(hrid)
	tok, err := demo.SignToken(a.Key, a.DID, audience, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return federation.Credential{Type: "jwt", Token: tok}
}

// The demo's cast: the weather bot (did:key, listed by alpha and beta, owned by alpha)
// and a beta-only agent to send to.
const sender = "acme/weather-bot"

func (f *fixture) senderDID() string { return f.fed.Agent(sender).DID }

func (f *fixture) betaTarget(t *testing.T) federation.Agent {
	t.Helper()
	for _, a := range f.fed.Agents() {
		if len(a.Registries) == 1 && a.Registries[0] == demo.Beta && a.DID == "" && !a.ReplyWithTask {
			agent, err := f.store.Agent(context.Background(), "did:agentvault:"+a.HumanReadableID)
			if err == nil && agent.Status == federation.StatusActive {
				return agent
			}
		}
	}
	t.Fatal("no beta-only agent in the demo")
	return federation.Agent{}
}

func TestRouteDelivers(t *testing.T) {
	f := newFixture(t)
	r := f.router(t, routing.Options{})
	target := f.betaTarget(t)
	f.ops.Reset()
	// A source_registry that is the directory's is accepted as the assertion it is.
	res, err := r.Route(context.Background(), federation.RouteRequest{
		From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{"text":"hello from alpha"}`), MessageID: "m-1",
		SourceRegistry: demo.Alpha,
	}, f.token(t, sender))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "delivered" || res.MessageID != "m-1" || res.TargetRegistry != demo.Beta || res.Fee != "0.01" {
		t.Errorf("result = %+v", res)
	}
	// The target checked the gateway's signature against its published keys.
	if !strings.Contains(string(res.Response), `"gateway_signature":"valid"`) {
		t.Errorf("the target did not verify the gateway's signature: %s", res.Response)
	}
	// At most three DynamoDB calls, the first time these parties meet: the parties'
	// records, the admission, the record (TestRoundTripsPerRoutedMessage has the rest).
	calls := 0
	for _, op := range tableOps {
		calls += f.ops.Calls(op)
	}
	if calls > 3 {
		t.Errorf("a routed message made %d DynamoDB calls, want at most 3", calls)
	}
	ledger, err := f.store.Ledger(context.Background(), f.senderDID(), "m-1")
	if err != nil || len(ledger) != 1 || ledger[0].Amount != "0.01" || ledger[0].Account != f.senderDID() {
		t.Errorf("ledger = %+v, %v", ledger, err)
	}
}

func TestRouteRefuses(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	payload := json.RawMessage(`{"text":"hi"}`)
	other := ""
	for _, a := range f.fed.Agents() {
		if a.Key != nil && a.HumanReadableID != sender {
			other = a.HumanReadableID
		}
	}
	tests := []struct {
		name string
		opts routing.Options
		req  federation.RouteRequest
		cred func() federation.Credential
		code string
	}{
		{"no credential", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: payload},
			func() federation.Credential { return federation.Credential{} }, federation.EUNAUTHORIZED},
		{"forged credential", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: payload},
			func() federation.Credential {
				c := f.token(t, sender)
				c.Token = c.Token[:len(c.Token)-4] + "AAAA"
				return c
			}, federation.EUNAUTHORIZED},
		{"someone else's identity", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: payload},
			func() federation.Credential { return f.token(t, other) }, federation.EFORBIDDEN},
		{"policy", routing.Options{Allow: []string{"beta->alpha"}}, federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: payload},
			func() federation.Credential { return f.token(t, sender) }, federation.EFORBIDDEN},
		{"wrong source registry", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: payload, SourceRegistry: "beta"},
			func() federation.Credential { return f.token(t, sender) }, federation.EFORBIDDEN},
		{"unknown target", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:nobody/here", Payload: payload},
			func() federation.Credential { return f.token(t, sender) }, federation.ENOTFOUND},
		{"too large", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: target.DID,
			Payload: json.RawMessage(`"` + strings.Repeat("x", routing.MaxPayload) + `"`)},
			func() federation.Credential { return f.token(t, sender) }, federation.ETOOLARGE},
		{"not JSON", routing.Options{}, federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{`)},
			func() federation.Credential { return f.token(t, sender) }, federation.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.router(t, tt.opts).Route(context.Background(), tt.req, tt.cred())
			if got := federation.ErrorCode(err); got != tt.code {
				t.Errorf("err = %v (%s), want %s", err, got, tt.code)
			}
		})
	}
}

func TestRouteIdempotentAndRateLimited(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	r := f.router(t, routing.Options{AgentRate: 3})
	req := federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{"n":1}`), MessageID: "dup-1"}
	first, err := r.Route(context.Background(), req, f.token(t, sender))
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Route(context.Background(), req, f.token(t, sender))
	if err != nil || !again.Duplicate || string(again.Response) != string(first.Response) {
		t.Errorf("a repeat: %+v, %v", again, err)
	}
	req.Payload = json.RawMessage(`{"n":2}`)
	if _, err := r.Route(context.Background(), req, f.token(t, sender)); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Errorf("same ID, other content: %v", err)
	}
	// The limit counts admitted messages: two more fit in this minute, the next does not.
	for i := range 3 {
		req := federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{}`), MessageID: fmt.Sprint("rl-", i)}
		_, err := r.Route(context.Background(), req, f.token(t, sender))
		if i < 2 && err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if i == 2 && federation.ErrorCode(err) != federation.ERATELIMITED {
			t.Errorf("message over the limit: %v", err)
		}
	}
}

// Fifty concurrent sends of one message ID deliver it once; every caller gets the result.
func TestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	// The target, behind a proxy that counts what reaches it.
	var deliveries atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		deliveries.Add(1)
		out, err := http.Post(target.Endpoint, req.Header.Get("Content-Type"), req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer out.Body.Close()
		w.Header().Set("Content-Type", out.Header.Get("Content-Type"))
		w.WriteHeader(out.StatusCode)
		_, _ = io.Copy(w, out.Body)
	}))
	defer proxy.Close()
	counted := target
	counted.DID, counted.Endpoint, counted.SourceID = "did:agentvault:test/counted", proxy.URL, "counted"
	if _, err := f.store.PutAgent(context.Background(), counted, "", nil); err != nil {
		t.Fatal(err)
	}

	r := f.router(t, routing.Options{})
	req := federation.RouteRequest{From: f.senderDID(), To: counted.DID, Payload: json.RawMessage(`{"once":true}`), MessageID: "fifty"}
	var wg sync.WaitGroup
	var ok, dup atomic.Int32
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Route(context.Background(), req, f.token(t, sender))
			if err != nil {
				errs <- err
				return
			}
			ok.Add(1)
			if res.Duplicate {
				dup.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent send failed: %v", err)
	}
	if n := deliveries.Load(); n != 1 {
		t.Errorf("the target received %d deliveries, want 1", n)
	}
	if ok.Load() != 50 || dup.Load() != 49 {
		t.Errorf("%d answered, %d as duplicates; want 50 and 49", ok.Load(), dup.Load())
	}
	ledger, _ := f.store.Ledger(context.Background(), f.senderDID(), "fifty")
	if len(ledger) != 1 {
		t.Errorf("%d ledger entries, want 1", len(ledger))
	}
}

// A target that is down, slow or answers garbage is EUNAVAILABLE (a 502), and the failed
// delivery is recorded; the sender is charged nothing.
func TestRouteDeliveryFailures(t *testing.T) {
	f := newFixture(t)
	base := f.betaTarget(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html>not an agent</html>"))
	}))
	defer garbage.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	r := f.router(t, routing.Options{DeliveryBudget: 500 * time.Millisecond})
	for name, endpoint := range map[string]string{"down": downURL, "slow": slow.URL, "garbage": garbage.URL} {
		t.Run(name, func(t *testing.T) {
			a := base
			a.DID, a.SourceID, a.Endpoint = "did:agentvault:test/"+name, name, endpoint
			if _, err := f.store.PutAgent(context.Background(), a, "", nil); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: a.DID, Payload: json.RawMessage(`{}`), MessageID: "fail-" + name}, f.token(t, sender))
			if federation.ErrorCode(err) != federation.EUNAVAILABLE || !strings.Contains(err.Error(), a.DID) {
				t.Fatalf("err = %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the failure took %s; the budget is 500ms", d)
			}
			c, err := f.store.Claim(context.Background(), f.senderDID(), "fail-"+name)
			if err != nil || c.Status != routing.ClaimFailed || c.Reason == "" {
				t.Errorf("record: %+v, %v", c, err)
			}
			if l, _ := f.store.Ledger(context.Background(), f.senderDID(), "fail-"+name); len(l) != 0 {
				t.Errorf("a failed delivery was charged: %+v", l)
			}
		})
	}
}

// A target the directory lacks is looked up in the registries by its ID, stored, and
// routed to; one no registry knows is a 404.
func TestRouteTargetedLookup(t *testing.T) {
	f := newFixture(t)
	known := f.betaTarget(t)
	// A static registry (a JSON document of cards) that lists one agent the sync never saw.
	card := fmt.Sprintf(`[{"humanReadableId":"late/comer","name":"Late Comer","url":%q,"skills":[{"id":"echo","name":"Echo"}]}]`, known.Endpoint)
	var lookups atomic.Int32
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		lookups.Add(1)
		_, _ = w.Write([]byte(card))
	}))
	defer static.Close()
	client, err := registry.New(federation.Registry{ID: "gamma", Kind: federation.KindStatic, URL: static.URL}, outbound.NewClient(outbound.Options{AllowPrivate: true}), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := f.router(t, routing.Options{Lookup: routing.RegistryLookup(map[string]directory.Source{"gamma": client}, []string{"gamma"}, f.store, logs.New(io.Discard, "error"))})

	res, err := r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:late/comer", Payload: json.RawMessage(`{}`)}, f.token(t, sender))
	if err != nil || res.TargetRegistry != "gamma" {
		t.Fatalf("route to an agent found by lookup: %+v, %v", res, err)
	}
	if a, err := f.store.Agent(context.Background(), "did:agentvault:late/comer"); err != nil || a.Registry != "gamma" {
		t.Errorf("the agent found was not stored: %+v, %v", a, err)
	}
	before := lookups.Load()
	if _, err := r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:late/comer", Payload: json.RawMessage(`{}`)}, f.token(t, sender)); err != nil {
		t.Fatal(err)
	}
	if lookups.Load() != before {
		t.Error("a stored agent was looked up again")
	}
	_, err = r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:never/heard", Payload: json.RawMessage(`{}`)}, f.token(t, sender))
	if federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("an agent no registry knows: %v", err)
	}
}

// stranger is a fresh did:key that no registry lists, and a credential it signed: anyone
// can make one.
func stranger(t *testing.T) (string, federation.Credential) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	did := "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, key.Public().(ed25519.PublicKey)...))
	tok, err := demo.SignToken(key, did, audience, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return did, federation.Credential{Type: "jwt", Token: tok}
}

// counted puts a copy of target behind a proxy that counts what reaches it, under a DID
// of its own, and returns that copy.
func (f *fixture) counted(t *testing.T, target federation.Agent, n *atomic.Int32) federation.Agent {
	t.Helper()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n.Add(1)
		out, err := http.Post(target.Endpoint, req.Header.Get("Content-Type"), req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer out.Body.Close()
		w.Header().Set("Content-Type", out.Header.Get("Content-Type"))
		w.WriteHeader(out.StatusCode)
		_, _ = io.Copy(w, out.Body)
	}))
	t.Cleanup(proxy.Close)
	c := target
	c.DID, c.Endpoint, c.SourceID = "did:agentvault:test/counted-"+fmt.Sprint(time.Now().UnixNano()), proxy.URL, "counted"
	if _, err := f.store.PutAgent(context.Background(), c, "", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// A self-made key that no registry lists cannot send by claiming a registry: the claim
// is refused, not signed, and nothing reaches the target or the table.
func TestFalseSourceRegistry(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int32
	target := f.counted(t, f.betaTarget(t), &hits)
	r := f.router(t, routing.Options{Allow: []string{"alpha->beta"}})
	did, cred := stranger(t)
	_, err := r.Route(context.Background(), federation.RouteRequest{
		From: did, To: target.DID, Payload: json.RawMessage(`{"text":"I am alpha"}`), MessageID: "false-1", SourceRegistry: demo.Alpha,
	}, cred)
	if federation.ErrorCode(err) != federation.EFORBIDDEN || !strings.Contains(err.Error(), "not an agent of any registry") {
		t.Fatalf("err = %v; want a 403 saying the sender is not registered", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the target received %d messages", hits.Load())
	}
	if _, err := f.store.Claim(context.Background(), did, "false-1"); federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("the refused message was claimed: %v", err)
	}
	// A registered agent claiming another registry than its own is refused too.
	_, err = r.Route(context.Background(), federation.RouteRequest{
		From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{}`), SourceRegistry: demo.Beta,
	}, f.token(t, sender))
	if federation.ErrorCode(err) != federation.EFORBIDDEN || !strings.Contains(err.Error(), "belongs to registry alpha, not beta") {
		t.Errorf("a false claim of a registered agent: %v", err)
	}
}

// Seven self-made keys cannot use up the federation's minute: they are refused before
// anything is counted, and a registered agent still gets through.
func TestUnregisteredSendersSpendNoBudget(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	r := f.router(t, routing.Options{GlobalRate: 5})
	for i := range 7 {
		did, cred := stranger(t)
		_, err := r.Route(context.Background(), federation.RouteRequest{From: did, To: target.DID, Payload: json.RawMessage(`{}`)}, cred)
		if federation.ErrorCode(err) != federation.EFORBIDDEN {
			t.Fatalf("self-made key %d: %v; want 403", i, err)
		}
	}
	if _, err := r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{}`)}, f.token(t, sender)); err != nil {
		t.Fatalf("a registered sender after seven self-made keys: %v", err)
	}
}

// A message ID is the sender's own: another agent using the same ID sends its own
// message, and the first sender's repeat still answers the first result.
func TestMessageIDsAreScopedToTheSender(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	r := f.router(t, routing.Options{})
	mine := federation.RouteRequest{From: f.senderDID(), To: target.DID, Payload: json.RawMessage(`{"text":"mine"}`), MessageID: "shared-1"}
	first, err := r.Route(context.Background(), mine, f.token(t, sender))
	if err != nil {
		t.Fatal(err)
	}
	const other = "numerix/calculator"
	theirs := federation.RouteRequest{From: f.fed.Agent(other).DID, To: target.DID, Payload: json.RawMessage(`{"text":"theirs"}`), MessageID: "shared-1"}
	res, err := r.Route(context.Background(), theirs, f.token(t, other))
	if err != nil || res.Duplicate {
		t.Fatalf("another sender's message with the same ID: %+v, %v; want it delivered", res, err)
	}
	again, err := r.Route(context.Background(), mine, f.token(t, sender))
	if err != nil || !again.Duplicate || string(again.Response) != string(first.Response) {
		t.Errorf("the first sender's repeat: %+v, %v", again, err)
	}
	for _, from := range []string{mine.From, theirs.From} {
		if l, err := f.store.Ledger(context.Background(), from, "shared-1"); err != nil || len(l) != 1 || l[0].Account != from {
			t.Errorf("ledger of %s: %+v, %v", from, l, err)
		}
	}
}

// The directory must hold the sender as active: a gone record (its registry no longer
// lists it) and a stale one (its registry is failing) cannot send as that registry.
func TestInactiveSendersCannotSend(t *testing.T) {
	f := newFixture(t)
	target := f.betaTarget(t)
	r := f.router(t, routing.Options{})
	// numerix/calculator (alpha) is deactivated there; beta goes down, and with it
	// polyglot/translator's listing.
	const gone, stale = "numerix/calculator", "polyglot/translator"
	rec, ok := f.fed.Registry(demo.Alpha).Find(gone)
	if !ok {
		t.Fatal("no calculator in alpha")
	}
	if _, err := f.fed.Registry(demo.Alpha).SetActive(rec.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := f.fed.StopRegistry(demo.Beta); err != nil {
		t.Fatal(err)
	}
	f.resync(t, directory.SyncOptions{StaleAfter: 1})
	for _, tt := range []struct{ hrid, status string }{{gone, federation.StatusGone}, {stale, federation.StatusStale}} {
		a, err := f.store.Agent(context.Background(), f.fed.Agent(tt.hrid).DID)
		if err != nil || a.Status != tt.status {
			t.Fatalf("%s: %+v, %v; want %s", tt.hrid, a, err, tt.status)
		}
		_, err = r.Route(context.Background(), federation.RouteRequest{From: a.DID, To: target.DID, Payload: json.RawMessage(`{}`)}, f.token(t, tt.hrid))
		if federation.ErrorCode(err) != federation.EFORBIDDEN || !strings.Contains(err.Error(), "status "+tt.status) {
			t.Errorf("%s (%s) sending: %v; want a 403 that says why", tt.hrid, tt.status, err)
		}
	}
}

// resync runs the directory's sync of the demo registries once more.
func (f *fixture) resync(t *testing.T, opts directory.SyncOptions) {
	t.Helper()
	doc, err := config.Parse(f.fed.Config())
	if err != nil {
		t.Fatal(err)
	}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	clients := map[string]directory.Source{}
	for _, reg := range doc.Registries {
		if clients[reg.ID], err = registry.New(reg, httpClient, registry.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := directory.NewSyncer(f.store, doc.Registries, clients, opts, logs.New(&bytes.Buffer{}, "error")).Run(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
}

// countingDiscoverer counts the directory queries a broadcast makes.
type countingDiscoverer struct {
	d routing.Discoverer
	n atomic.Int32
}

func (c *countingDiscoverer) Discover(ctx context.Context, q directory.Query) (directory.Page, error) {
	c.n.Add(1)
	return c.d.Discover(ctx, q)
}

// Broadcasting as someone else is refused before the directory is searched; so is a
// broadcast of a sender no registry lists, and one that names no recipients.
func TestBroadcastRefusals(t *testing.T) {
	f := newFixture(t)
	d, err := directory.NewDiscoverer(f.store, []federation.Registry{{ID: demo.Alpha}, {ID: demo.Beta}}, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	r := f.router(t, routing.Options{})
	strangerDID, strangerCred := stranger(t)
	echo := routing.Criteria{Capabilities: routing.Strings{"echo"}}
	tests := []struct {
		name string
		req  routing.BroadcastRequest
		cred federation.Credential
		code string
		says string
	}{
		{"as someone else", routing.BroadcastRequest{From: f.senderDID(), Payload: json.RawMessage(`{}`), Criteria: echo},
			f.token(t, "numerix/calculator"), federation.EFORBIDDEN, "may not send as"},
		{"unregistered", routing.BroadcastRequest{From: strangerDID, Payload: json.RawMessage(`{}`), Criteria: echo},
			strangerCred, federation.EFORBIDDEN, "not an agent of any registry"},
		{"no criteria", routing.BroadcastRequest{From: f.senderDID(), Payload: json.RawMessage(`{}`)},
			f.token(t, sender), federation.EINVALID, `"all": true`},
		{"criteria and all", routing.BroadcastRequest{From: f.senderDID(), Payload: json.RawMessage(`{}`), Criteria: echo, All: true},
			f.token(t, sender), federation.EINVALID, "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counting := &countingDiscoverer{d: d}
			f.ops.Reset()
			_, err := r.Broadcast(context.Background(), counting, tt.req, tt.cred)
			if federation.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v; want %s saying %q", err, tt.code, tt.says)
			}
			if n := counting.n.Load(); n != 0 {
				t.Errorf("the directory was searched %d times", n)
			}
			if n := f.ops.Calls("Query"); n != 0 {
				t.Errorf("%d directory queries reached the table", n)
			}
		})
	}
	// With "all", every other active agent of the federation is reached.
	res, err := r.Broadcast(context.Background(), d, routing.BroadcastRequest{From: f.senderDID(), Payload: json.RawMessage(`{"text":"all"}`), All: true}, f.token(t, sender))
	if err != nil || res.Recipients < 10 || res.Delivered != res.Recipients {
		t.Errorf("broadcast to all: %+v, %v", res, err)
	}
}

// A message from an agent to itself is delivered like any other, on every engine. It names
// one record twice in the parties' batch read, which DynamoDB (and moto) refuse: it was a
// 500 there, while kumo answered with the record once per repeat.
func TestRouteToItself(t *testing.T) {
	f := newFixture(t)
	r := f.router(t, routing.Options{})
	res, err := r.Route(context.Background(), federation.RouteRequest{
		From: f.senderDID(), To: f.senderDID(), Payload: json.RawMessage(`{"text":"a note to self"}`), MessageID: "self-1",
	}, f.token(t, sender))
	if err != nil {
		t.Fatalf("a message to itself: %v", err)
	}
	if res.Status != "delivered" || res.TargetRegistry != demo.Alpha || !strings.Contains(string(res.Response), `"gateway_signature":"valid"`) {
		t.Errorf("result = %+v", res)
	}
}
