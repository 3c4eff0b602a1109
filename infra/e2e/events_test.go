// Package e2e_test runs the gateway's event streams end to end: the real template and
// functions behind the local WebSocket API and stream poller, and real WebSocket clients.
// It is a package of its own so that its stack has the local endpoint of its test process
// to itself (the emulator's state is per process).
package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/infra/subscriber"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/routing"
	"github.com/federation-gateway/gateway/shared/wsapi"
)

// The changes are made by writing the table as the directory, routing and bridge do
// (their own tests cover how they get there); the demo federation provides identities with
// did:key credentials.

// eventsGateway is the stack the tests of this file share: building and starting it is
// the slow part. The tests change the connection limits, so they do not run in parallel.
type eventsGateway struct {
	stack    *devstack.Stack
	store    *dynamo.Store
	fed      *demo.Federation
	operator *demo.Agent // an identity the configuration names in bridge.operators
	seq      int
	mu       sync.Mutex
}

var sharedEventsGateway = sync.OnceValues(func() (*eventsGateway, error) {
	ctx := context.Background()
	// The demo's agents check the gateway's signature on what it forwards: they need the
	// HTTP API's address before the stack starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	fed, err := demo.Start(ctx, demo.Options{GatewayURL: "http://" + apiAddr})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "events-e2e-")
	if err != nil {
		return nil, err
	}
	// The demo's configuration, with an operator.
	operator := &demo.Agent{HumanReadableID: "events-e2e/operator"}
	operator.DID, operator.Key = demo.DIDKey(operator.HumanReadableID)
	var doc map[string]any
	if err := json.Unmarshal(fed.Config(), &doc); err != nil {
		return nil, err
	}
	doc["bridge"].(map[string]any)["operators"] = []string{operator.DID}
	raw, _ := json.Marshal(doc)
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, raw, 0o600); err != nil {
		return nil, err
	}
	root, _ := os.Getwd()
	root = filepath.Join(root, "..", "..") // infra/e2e
	s, err := devstack.Start(ctx, devstack.Options{
		Template: filepath.Join(root, "template.yaml"), Config: cfg, StackName: "events-e2e",
		EndpointAddr: "127.0.0.1:0", APIAddr: apiAddr, WebSocketAddr: "127.0.0.1:0", Log: io.Discard, QuietFunctions: true,
		Functions: []string{"WsConnectFunction", "WsDisconnectFunction", "WsMessageFunction", "EventsFunction",
			"SyncFunction", "RouteFunction", "BridgeFunction", "BridgeTaskFunction", "OperatorFunction"},
		Secrets:    fed.Secrets("local"),
		BuildDir:   filepath.Join(os.TempDir(), "events-e2e-build"),
		StreamPoll: 50 * time.Millisecond,
		// The tests sync when they mean to.
		ScheduleEvery: time.Hour,
	})
	if err != nil {
		fed.Close()
		return nil, err
	}
	// The demo token services hold the gateway's initial liquidity: an operator records it
	// in the books, as make run does.
	for _, r := range fed.Registries() {
		seed := fmt.Sprintf(`{"action":"seed","registry":%q,"request_id":"events-e2e-seed-%s","operator":"events-e2e","reason":"the demo's initial liquidity"}`, r.ID, r.ID)
		if _, err := s.Invoke(ctx, "OperatorFunction", []byte(seed)); err != nil {
			s.Close()
			fed.Close()
			return nil, fmt.Errorf("seed the bridge's books: %w", err)
		}
	}
	store := dynamo.NewStore(dynamo.NewClient(devstack.LocalAWSConfig(s.EndpointURL), true), s.Template.Tables[0].Name)
	return &eventsGateway{stack: s, store: store, fed: fed, operator: operator}, nil
})

func gateway(t *testing.T) *eventsGateway {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the event stream's functions")
	}
	g, err := sharedEventsGateway()
	if err != nil {
		t.Fatalf("start the gateway: %v", err)
	}
	g.stack.SetWebSocketLimits(devstack.DefaultWebSocketIdle, devstack.DefaultWebSocketMaxAge)
	return g
}

// agent is a demo agent with a did:key, whose credentials it signs itself.
func (g *eventsGateway) agent(t *testing.T, name string) *demo.Agent {
	t.Helper()
	a := g.fed.Agent(name)
	if a == nil || a.Key == nil {
		t.Fatalf("no demo agent %s with a key", name)
	}
	return a
}

func token(a *demo.Agent) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		return demo.SignToken(a.Key, a.DID, "federation-gateway", time.Minute)
	}
}

// registryEvent makes a registry.unhealthy event: a new registry whose first sync failed.
func (g *eventsGateway) registryEvent(t *testing.T) string {
	t.Helper()
	g.mu.Lock()
	g.seq++
	id := fmt.Sprintf("reg-%d-%d", time.Now().UnixNano()%1e6, g.seq)
	g.mu.Unlock()
	if err := g.store.SaveSyncState(context.Background(), directory.SyncState{RegistryState: federation.RegistryState{ID: id, LastError: "down"}}); err != nil {
		t.Fatal(err)
	}
	return id
}

// agentEvent makes an agent.added event: a registry lists a new agent.
func (g *eventsGateway) agentEvent(t *testing.T) string {
	t.Helper()
	did := fmt.Sprint("did:web:agent-", time.Now().UnixNano(), ".example")
	a := federation.Agent{DID: did, Name: "New", Registry: "beta", SourceID: did, Status: federation.StatusActive,
		ContentHash: "h", LastSeen: time.Now().UTC(), Skills: []federation.Skill{}}
	if _, err := g.store.PutAgent(context.Background(), a, "v1", nil); err != nil {
		t.Fatal(err)
	}
	return did
}

// transferEvent makes a bridge.pending event: a transfer from one DID to another is
// accepted, as the bridge records it (the sender asked for it with its own credential), on
// a lane of its own, so the bridge's lanes stay as they were.
func (g *eventsGateway) transferEvent(t *testing.T, from, to string) string {
	t.Helper()
	id := fmt.Sprint("br-events-", time.Now().UnixNano())
	lane := bridge.Lane{ID: bridge.LaneID{From: "alpha", To: id}}
	tr := bridge.Transfer{ID: id, Status: bridge.StatusPending, Step: bridge.StepAccept, From: from, To: to, Lane: lane.ID,
		Sender: from, Amount: decimal.RequireFromString("5"), CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := g.store.Accept(context.Background(), bridge.Acceptance{Transfer: tr, Lane: lane}); err != nil {
		t.Fatal(err)
	}
	return id
}

// laneEvent makes a lane.paused event: an operator pauses a lane (one of its own, so the
// bridge's lanes stay open).
func (g *eventsGateway) laneEvent(t *testing.T) string {
	t.Helper()
	l := bridge.Lane{ID: bridge.LaneID{From: fmt.Sprint("x", time.Now().UnixNano()), To: "y"}, Paused: true}
	if err := g.store.PutLane(context.Background(), l, nil); err != nil {
		t.Fatal(err)
	}
	return l.ID.String()
}

// messageEvent makes a message.delivered event: a message from one DID to another is
// claimed and delivered, as routing records it.
func (g *eventsGateway) messageEvent(t *testing.T, from, to string) string {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprint("msg-", time.Now().UnixNano())
	if _, err := g.store.Admit(ctx, routing.Admission{MessageID: id, ContentHash: "h", From: from, To: to, N: 1,
		AgentLimit: 1 << 20, GlobalShardLimit: 1 << 20, Minute: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Complete(ctx, routing.Claim{MessageID: id, From: from, To: to, Status: routing.ClaimDelivered, TargetRegistry: "beta"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// watcher is a subscriber run in the background that collects its events.
type watcher struct {
	sub    *subscriber.Subscriber
	mu     sync.Mutex
	events []events.Event
	frames []events.Frame
	live   chan struct{}
	done   chan error
	stop   context.CancelFunc
}

func (g *eventsGateway) watch(t *testing.T, a *demo.Agent, opts subscriber.Options) *watcher {
	t.Helper()
	w := &watcher{live: make(chan struct{}, 16), done: make(chan error, 1)}
	opts.URL, opts.Token = g.stack.WebSocketURL, token(a)
	opts.OnEvent = func(e events.Event) error {
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
		return nil
	}
	opts.OnFrame = func(f events.Frame) {
		w.mu.Lock()
		w.frames = append(w.frames, f)
		w.mu.Unlock()
		if f.Kind == events.KindLive {
			w.live <- struct{}{}
		}
	}
	var err error
	if w.sub, err = subscriber.New(opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() { w.done <- w.sub.Run(ctx) }()
	t.Cleanup(cancel)
	w.waitLive(t)
	return w
}

func (w *watcher) waitLive(t *testing.T) {
	t.Helper()
	select {
	case <-w.live:
	case err := <-w.done:
		t.Fatalf("the subscriber ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the subscription did not go live")
	}
}

// subjects returns the subjects of the events received, in order.
func (w *watcher) subjects() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.events {
		out = append(out, e.Subject)
	}
	return out
}

// waitFor waits until the watcher has received an event with the subject.
func (w *watcher) waitFor(t *testing.T, subject string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(w.subjects(), subject) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ended := "still running"
	select {
	case err := <-w.done:
		ended = fmt.Sprintf("ended: %v", err)
	default:
	}
	t.Fatalf("no event of %s arrived (the subscriber is %s); received %v", subject, ended, w.subjects())
}

// Directory, registry and lane events go to every subscriber; a message's events to its
// sender and target only, a bridge transfer's to its parties only; operators see them all.
// Events arrive in log order, so once a later public event has arrived, an earlier event a
// subscriber was due would have arrived too.
func TestEventsAuthorization(t *testing.T) {
	g := gateway(t)
	sender, target, stranger := g.agent(t, "acme/weather-bot"), g.agent(t, "polyglot/translator"), g.agent(t, "numerix/calculator")
	ws := g.watch(t, sender, subscriber.Options{})
	wt := g.watch(t, target, subscriber.Options{})
	wx := g.watch(t, stranger, subscriber.Options{})
	wo := g.watch(t, g.operator, subscriber.Options{})
	wr := g.watch(t, sender, subscriber.Options{Subprotocol: true, Filter: events.Filter{Types: []string{"registry.*"}}})

	agent := g.agentEvent(t)
	msg := g.messageEvent(t, sender.DID, target.DID)
	transfer := g.transferEvent(t, sender.DID, target.DID)
	lane := g.laneEvent(t)
	reg := g.registryEvent(t)
	everything := []string{"agent.added " + agent, "message.delivered " + msg, "bridge.pending " + transfer, "lane.paused " + lane, "registry.unhealthy " + reg}
	for _, tt := range []struct {
		name string
		w    *watcher
		want []string
	}{
		{"the sender", ws, everything},
		{"the target", wt, everything},
		{"an operator", wo, everything},
		{"a stranger", wx, []string{"agent.added " + agent, "lane.paused " + lane, "registry.unhealthy " + reg}},
		{"a registry.* subscription (by subprotocol credential)", wr, []string{"registry.unhealthy " + reg}},
	} {
		tt.w.waitFor(t, reg)
		if got := tt.w.typesOf(agent, msg, transfer, lane, reg); !slices.Equal(got, tt.want) {
			t.Errorf("%s received %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A subscriber that drops its connection mid-stream and resumes with after gets every
// event once, in order, including those made while it was away.
func TestEventsResumeAfterDisconnect(t *testing.T) {
	g := gateway(t)
	a := g.agent(t, "acme/weather-bot")
	w := g.watch(t, a, subscriber.Options{Reconnect: true, MinBackoff: 50 * time.Millisecond, Filter: events.Filter{Types: []string{"registry.unhealthy"}}})
	var want []string
	for i := range 30 {
		want = append(want, g.registryEvent(t))
		if i == 10 || i == 20 {
			w.waitFor(t, want[len(want)-1])
			w.sub.Drop()
		}
	}
	w.waitFor(t, want[len(want)-1])
	got := w.subjects()
	// Other tests' events may be among them; ours must be there once each, in order.
	var ours []string
	for _, s := range got {
		if slices.Contains(want, s) {
			ours = append(ours, s)
		}
	}
	if !slices.Equal(ours, want) {
		t.Errorf("received %v\nwant %v", ours, want)
	}
	st := w.sub.Stats()
	if st.Connections < 3 || st.Duplicates != 0 {
		t.Errorf("stats %+v: want 3 connections and no duplicate sent", st)
	}
	checkPositions(t, w)
}

// checkPositions checks that the events came in strictly increasing positions.
func checkPositions(t *testing.T, w *watcher) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.events); i++ {
		if w.events[i].Position <= w.events[i-1].Position {
			t.Fatalf("event %d at %s after %s", i, w.events[i].Position, w.events[i-1].Position)
		}
	}
}

// API Gateway closes every connection after 2 hours (here: 1 second): the subscriber
// connects again and resumes, and loses nothing.
func TestEventsResumeAtMaximumAge(t *testing.T) {
	g := gateway(t)
	g.stack.SetWebSocketLimits(0, time.Second)
	a := g.agent(t, "acme/weather-bot")
	w := g.watch(t, a, subscriber.Options{Reconnect: true, MinBackoff: 20 * time.Millisecond, Filter: events.Filter{Types: []string{"registry.*"}}})
	var want []string
	start := time.Now()
	for time.Since(start) < 3500*time.Millisecond {
		want = append(want, g.registryEvent(t))
		time.Sleep(100 * time.Millisecond)
	}
	w.waitFor(t, want[len(want)-1])
	var ours []string
	for _, s := range w.subjects() {
		if slices.Contains(want, s) {
			ours = append(ours, s)
		}
	}
	if !slices.Equal(ours, want) {
		t.Errorf("received %d of %d events, in this order: %v", len(ours), len(want), ours)
	}
	if st := w.sub.Stats(); st.Connections < 3 || st.Live < 3 || st.Duplicates != 0 {
		t.Errorf("stats %+v: want a new connection each second, live, and no duplicate", st)
	}
}

// A connection that is gone without its $disconnect (API Gateway calls it on a best-effort
// basis) answers the next post 410, and is forgotten.
func TestEventsForgetGoneConnections(t *testing.T) {
	g := gateway(t)
	ctx := context.Background()
	ghost := "R2hvc3RHaG9zdA=="
	if err := g.store.PutConnection(ctx, events.Connection{ID: ghost, Viewer: events.Viewer{Subject: "did:key:ghost"}, ConnectedAt: time.Now()}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Subscribe(ctx, ghost, events.Subscription{ID: "sub-ghost", State: events.SubPending}); err != nil {
		t.Fatal(err)
	}
	// Its subscription is served: the replay's first post (the live frame) gets a 410.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := g.store.Connection(ctx, ghost); federation.ErrorCode(err) == federation.ENOTFOUND {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the gone connection is still recorded")
}

// dial opens a raw connection with a credential.
func (g *eventsGateway) dial(t *testing.T, a *demo.Agent) *websocket.Conn {
	t.Helper()
	tok, _ := token(a)(context.Background())
	c, _, err := websocket.Dial(context.Background(), g.stack.WebSocketURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, frame string) events.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("send %.40s: %v", frame, err)
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("after %.40s: %v", frame, err)
	}
	var f events.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("answer %s: %v", data, err)
	}
	return f
}

// A bad frame gets an error frame that says what is wrong, and the connection goes on.
func TestEventsBadFrames(t *testing.T) {
	g := gateway(t)
	c := g.dial(t, g.agent(t, "acme/weather-bot"))
	for _, tt := range []struct{ name, frame, code, mention string }{
		{"not JSON", "hello", federation.EINVALID, "JSON object"},
		{"no action", `{"types":["agent.added"]}`, federation.EINVALID, "no action"},
		{"unknown action", `{"action":"publish","id":"7"}`, federation.EINVALID, `unknown action "publish"`},
		{"unknown filter", `{"action":"subscribe","colour":"red"}`, federation.EINVALID, `unknown filter "colour"`},
		{"unknown type", `{"action":"subscribe","types":["agent.born"]}`, federation.EINVALID, "unknown event type"},
		{"bad position", `{"action":"subscribe","after":"soon"}`, federation.EINVALID, "not a position"},
		{"future position", `{"action":"subscribe","after":"999999999"}`, federation.ENOTFOUND, "never given out"},
		{"oversized", `{"action":"ping","id":"` + strings.Repeat("x", 20<<10) + `"}`, federation.ETOOLARGE, "the most a frame may have"},
	} {
		f := send(t, c, tt.frame)
		if f.Kind != events.KindError || f.Code != tt.code || !strings.Contains(f.Message, tt.mention) {
			t.Errorf("%s: %+v", tt.name, f)
		}
	}
	if f := send(t, c, `{"action":"ping","id":"still-there"}`); f.Kind != events.KindPong || f.ID != "still-there" {
		t.Errorf("ping after bad frames: %+v", f)
	}
}

// The handshake: a credential in the Authorization header or, as a browser must send it,
// in Sec-WebSocket-Protocol (answered with the protocol's name only); none, a bad one or
// one replayed is refused with 401.
func TestEventsHandshake(t *testing.T) {
	g := gateway(t)
	a := g.agent(t, "acme/weather-bot")
	ctx := context.Background()
	tok, _ := token(a)(ctx)
	c, _, err := websocket.Dial(ctx, g.stack.WebSocketURL, &websocket.DialOptions{Subprotocols: []string{wsapi.Subprotocol, wsapi.BearerProtocol + tok}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != wsapi.Subprotocol {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	_ = c.CloseNow()
	for name, opts := range map[string]*websocket.DialOptions{
		"no credential":    {},
		"replayed token":   {HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}},
		"not a JWT":        {HTTPHeader: http.Header{"Authorization": {"Bearer nope"}}},
		"bare subprotocol": {Subprotocols: []string{wsapi.BearerProtocol + tok}},
	} {
		c, resp, err := websocket.Dial(ctx, g.stack.WebSocketURL, opts)
		if err == nil {
			_ = c.CloseNow()
			t.Errorf("%s: connected", name)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %v %v", name, resp, err)
		}
	}
}

// The stream retries a batch the function failed: the events of the retried changes are
// neither logged nor sent twice.
func TestEventsRetriedBatch(t *testing.T) {
	g := gateway(t)
	a := g.agent(t, "acme/weather-bot")
	w := g.watch(t, a, subscriber.Options{Filter: events.Filter{Types: []string{"registry.*"}}})
	reg := g.registryEvent(t)
	w.waitFor(t, reg)
	// The batch again, as the poller sends it when it retries: the record read back from
	// the stream.
	rec := localtest.StreamRecord(t, g.stack.EndpointURL, g.stack.Template.Tables[0].Name, func(r map[string]any) bool {
		keys, _ := r["dynamodb"].(map[string]any)["Keys"].(map[string]any)
		pk, _ := keys["PK"].(map[string]any)["S"].(string)
		return pk == "REGISTRY#"+reg
	})
	payload, _ := json.Marshal(map[string]any{"Records": []any{rec}})
	for range 2 {
		if _, err := g.stack.Invoke(context.Background(), "EventsFunction", payload); err != nil {
			t.Fatal(err)
		}
	}
	last := g.registryEvent(t)
	w.waitFor(t, last)
	n := 0
	for _, s := range w.subjects() {
		if s == reg {
			n++
		}
	}
	if n != 1 || w.sub.Stats().Duplicates != 0 {
		t.Errorf("the event of the retried change arrived %d times (%d duplicates dropped)", n, w.sub.Stats().Duplicates)
	}
	// And the log holds it once.
	log := g.store.EventLog(time.Hour)
	head, _ := log.Head(context.Background())
	all, _ := log.Read(context.Background(), 0, head.N, int(head.N))
	count := 0
	for _, e := range all {
		if e.Subject == reg {
			count++
		}
	}
	if count != 1 {
		t.Errorf("the log holds the event %d times", count)
	}
}

// The README's demo, with the real functions: a subscriber with a demo agent's
// credential sees a registry stopped and started (as the sync finds it), its own message
// routed and its own bridge transfer step by step to completed (the real saga on the
// local Step Functions), in order, and not another agent's message or transfer. How long
// each event took after its action is logged: the benchmark's events section measures it.
func TestEventsDemo(t *testing.T) {
	g := gateway(t)
	ctx := context.Background()
	sender, other := g.agent(t, "acme/weather-bot"), g.agent(t, "numerix/calculator")
	sync := func() {
		t.Helper()
		if _, err := g.stack.Invoke(ctx, "SyncFunction", []byte(`{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)); err != nil {
			t.Fatal(err)
		}
	}
	sync() // the directory the routes need; its agent.added events come before the subscriptions
	demoTypes := events.Filter{Types: []string{"registry.*", "message.*", "bridge.*"}}
	ws := g.watch(t, sender, subscriber.Options{Filter: demoTypes})
	wo := g.watch(t, other, subscriber.Options{Filter: demoTypes})

	// post sends body to the HTTP API's path with the agent's credential, and wants status.
	post := func(from *demo.Agent, path, body string, status int) {
		t.Helper()
		tok, _ := token(from)(ctx)
		req, _ := http.NewRequest(http.MethodPost, g.stack.APIURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("POST %s %s: %d %s", path, body, resp.StatusCode, raw)
		}
	}
	route := func(from *demo.Agent, id string) {
		t.Helper()
		post(from, "/api/v1/route", `{"from":"`+from.DID+`","to":"did:agentvault:textkit/mirror","payload":{"text":"hello"},"message_id":"`+id+`"}`, http.StatusOK)
	}
	// bridgeTo deposits amount to the gateway's account on alpha's token service as the
	// agent; it returns the transfer's ID and the request that asks the gateway to bridge
	// the deposit to the receiver.
	bridgeTo := func(from *demo.Agent, to, amount string) (string, func()) {
		tx, err := g.fed.TEG("alpha").Deposit(g.fed.TEGURL("alpha"), from.DID, demo.GatewayAccount, amount, "to bridge")
		if err != nil {
			t.Fatalf("deposit: %v", err)
		}
		id := bridge.TransferID(bridge.Deposit{Registry: "alpha", TransactionID: tx.TransactionID})
		return id, func() {
			post(from, "/api/v1/bridge", fmt.Sprintf(`{"from":%q,"to":%q,"amount":%q,"deposit":{"registry":"alpha","transaction_id":%q}}`,
				from.DID, to, amount, tx.TransactionID), http.StatusAccepted)
		}
	}
	// timed acts, then waits for the nth event about subject.
	timed := func(w *watcher, subject string, nth int, what string, act func()) {
		t.Helper()
		act()
		done := time.Now()
		deadline := done.Add(20 * time.Second)
		for len(w.typesOf(subject)) < nth {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no event; received %v", what, w.subjects())
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s: the event arrived %s after the action", what, time.Since(done).Round(time.Millisecond))
	}
	if err := g.fed.StopRegistry("alpha"); err != nil {
		t.Fatal(err)
	}
	timed(ws, "alpha", 1, "alpha stopped, synced", sync)
	if err := g.fed.StartRegistry("alpha"); err != nil {
		t.Fatal(err)
	}
	timed(ws, "alpha", 2, "alpha started, synced", sync)
	id := fmt.Sprint("demo-", time.Now().UnixNano())
	timed(ws, id, 1, "a message routed", func() { route(sender, id) })
	transfer, ask := bridgeTo(sender, "did:agentvault:textkit/mirror", "25.0")
	timed(ws, transfer, 5, "a bridge transfer, pending to completed", ask)
	otherID := id + "-other"
	route(other, otherID)
	wo.waitFor(t, otherID)
	theirs, ask := bridgeTo(other, "did:agentvault:textkit/mirror", "3.0")
	ask()
	wo.waitFor(t, theirs)
	last := g.registryEvent(t) // after everything: once it is in, everything before is
	ws.waitFor(t, last)
	wo.waitFor(t, last)

	got := ws.typesOf("alpha", id, otherID, transfer, theirs)
	want := []string{"registry.unhealthy alpha", "registry.healthy alpha", "message.delivered " + id}
	for _, status := range []string{"pending", "verified", "reserved", "minted", "completed"} {
		want = append(want, "bridge."+status+" "+transfer)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the sender saw %v, want %v", got, want)
	}
	if got := wo.typesOf(id, transfer); len(got) != 0 {
		t.Errorf("another agent saw the sender's message or transfer: %v", got)
	}
}

// typesOf returns "<type> <subject>" of the events about the subjects, in order.
func (w *watcher) typesOf(subjects ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.events {
		if slices.Contains(subjects, e.Subject) {
			out = append(out, e.Type+" "+e.Subject)
		}
	}
	return out
}
