package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
)

// poster records what is posted to each connection, as the @connections API would
// deliver it, and fails or stalls for the connections told to.
type poster struct {
	mu     sync.Mutex
	frames map[string][]events.Frame
	closed map[string]bool
	gone   map[string]bool
	stall  map[string]bool // posts block until their context ends
}

func newPoster() *poster {
	return &poster{frames: map[string][]events.Frame{}, closed: map[string]bool{}, gone: map[string]bool{}, stall: map[string]bool{}}
}

func (p *poster) Post(ctx context.Context, id string, data []byte) error {
	p.mu.Lock()
	gone, stall := p.gone[id] || p.closed[id], p.stall[id]
	p.mu.Unlock()
	if gone {
		return events.ErrGone
	}
	if stall {
		<-ctx.Done()
		return ctx.Err()
	}
	var f events.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames[id] = append(p.frames[id], f)
	return nil
}

func (p *poster) Close(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed[id] = true
	return nil
}

// events returns the IDs of the events a connection received, in order.
func (p *poster) events(id string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, f := range p.frames[id] {
		if f.Kind == events.KindEvent {
			ids = append(ids, f.Event.ID)
		}
	}
	return ids
}

func (p *poster) kinds(id string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ks []string
	for _, f := range p.frames[id] {
		ks = append(ks, f.Kind)
	}
	return ks
}

type fixture struct {
	store  *dynamo.Store
	log    dynamo.EventLog
	poster *poster
	proc   *events.Processor
	svc    *events.Service
	seq    int
}

func newFixture(t *testing.T, opts events.ProcessorOptions) *fixture {
	t.Helper()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	f := &fixture{store: store, log: store.EventLog(time.Hour), poster: newPoster()}
	logger := logs.New(&bytes.Buffer{}, "error")
	f.proc = events.NewProcessor(f.log, store, f.poster, logger, opts)
	f.svc = events.NewService(f.log, store, f.poster, store, logger, time.Hour)
	return f
}

// agentChange is the change of a stream record that adds an agent.
func (f *fixture) agentChange(did, registry string) events.Change {
	f.seq++
	return events.Change{EventID: fmt.Sprint("rec-", f.seq), Seq: fmt.Sprint(f.seq), Time: time.Now(),
		Agent: &events.AgentChange{New: &federation.Agent{DID: did, Registry: registry, Status: federation.StatusActive}}}
}

func (f *fixture) messageChange(id, from, to string) events.Change {
	f.seq++
	return events.Change{EventID: fmt.Sprint("rec-", f.seq), Seq: fmt.Sprint(f.seq), Time: time.Now(), Message: &events.MessageChange{
		Old: &events.Message{ID: id, From: from, To: to, Status: "pending"}, New: &events.Message{ID: id, From: from, To: to, Status: "delivered"}}}
}

// connect records a connection, subscribes it, and serves the subscription as the stream
// would report it to the processor.
func (f *fixture) connect(t *testing.T, id string, v events.Viewer, frame string) {
	t.Helper()
	ctx := context.Background()
	if err := f.svc.Connect(ctx, id, v); err != nil {
		t.Fatal(err)
	}
	f.subscribe(t, id, frame)
}

func (f *fixture) subscribe(t *testing.T, id, frame string) {
	t.Helper()
	ctx := context.Background()
	if err := f.svc.Receive(ctx, id, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	c, err := f.store.Connection(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sub.State != events.SubPending {
		t.Fatalf("%s: subscription %+v after %s; frames %v", id, c.Sub, frame, f.poster.frames[id])
	}
	f.process(t, events.Change{EventID: "sub-" + c.Sub.ID, Subscription: &events.SubscriptionChange{Connection: id, Subscription: c.Sub.ID}})
}

func (f *fixture) process(t *testing.T, changes ...events.Change) {
	t.Helper()
	n, err := f.proc.Process(context.Background(), changes)
	if err != nil || n != len(changes) {
		t.Fatalf("processed %d of %d: %v", n, len(changes), err)
	}
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// Live events go to the subscriptions that want them and may see them, in order, once;
// a retried batch sends nothing twice.
func TestProcessorSendsLive(t *testing.T) {
	f := newFixture(t, events.ProcessorOptions{})
	f.connect(t, "agents", events.Viewer{Subject: "did:key:watcher"}, `{"action":"subscribe","types":["agent.*"]}`)
	f.connect(t, "sender", events.Viewer{Subject: "did:key:a"}, `{"action":"subscribe"}`)
	f.connect(t, "stranger", events.Viewer{Subject: "did:key:z"}, `{"action":"subscribe","types":["message.*"]}`)
	f.connect(t, "operator", events.Viewer{Subject: "ops", Operator: true}, `{"action":"subscribe","registry":"beta"}`)

	batch := []events.Change{f.agentChange("did:web:1", "alpha"), f.messageChange("m1", "did:key:a", "did:web:2"), f.agentChange("did:web:3", "beta")}
	f.process(t, batch...)
	f.process(t, batch...) // the stream retries the batch

	for conn, want := range map[string][]string{
		"agents":   {"rec-1", "rec-3"},
		"sender":   {"rec-1", "rec-2", "rec-3"},
		"stranger": nil,
		"operator": {"rec-3"},
	} {
		if got := f.poster.events(conn); !equal(got, want) {
			t.Errorf("%s received %v, want %v", conn, got, want)
		}
	}
	if k := f.poster.kinds("sender"); !equal(k, []string{"subscribed", "live", "event", "event", "event"}) {
		t.Errorf("sender's frames: %v", k)
	}
	head, _ := f.log.Head(context.Background())
	if head.N != 3 || head.Sent != 3 {
		t.Errorf("head %+v, want 3 appended and sent", head)
	}
}

// subscribe with after replays the log from there and then goes live: across the seam,
// every event once, in order, including those appended in the same batch as the
// subscription.
func TestProcessorReplayThenLive(t *testing.T) {
	f := newFixture(t, events.ProcessorOptions{ReplayChunk: 2})
	f.connect(t, "first", events.Viewer{Subject: "did:key:w"}, `{"action":"subscribe"}`)
	var batch []events.Change
	for i := range 5 {
		batch = append(batch, f.agentChange(fmt.Sprint("did:web:", i), "alpha"))
	}
	f.process(t, batch...)
	frames := f.poster.frames["first"]
	third := frames[len(frames)-3].Event // rec-3, at position 3

	// A subscriber resumes after rec-3. Its subscription reaches the processor in the same
	// batch as two new changes, one before and one after it.
	ctx := context.Background()
	if err := f.svc.Connect(ctx, "again", events.Viewer{Subject: "did:key:w"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Receive(ctx, "again", []byte(`{"action":"subscribe","after":"`+third.Position.String()+`"}`)); err != nil {
		t.Fatal(err)
	}
	c, _ := f.store.Connection(ctx, "again")
	sub := events.Change{EventID: "s", Subscription: &events.SubscriptionChange{Connection: "again", Subscription: c.Sub.ID}}
	f.process(t, f.agentChange("did:web:5", "alpha"), sub, f.agentChange("did:web:6", "alpha"))
	// The replay of 2 entries a run left the rest for the next run, which the stream
	// starts when the subscription's replay position moves on.
	if c, _ = f.store.Connection(ctx, "again"); c.Sub.State == events.SubPending {
		f.process(t, events.Change{EventID: "s2", Subscription: &events.SubscriptionChange{Connection: "again", Subscription: c.Sub.ID}})
	}
	f.process(t, f.agentChange("did:web:7", "alpha"))

	want := []string{"rec-4", "rec-5", "rec-6", "rec-7", "rec-8"}
	if got := f.poster.events("again"); !equal(got, want) {
		t.Fatalf("resumed subscriber received %v, want %v (frames %v)", got, want, f.poster.kinds("again"))
	}
	// And the subscription is live, once.
	if k := f.poster.kinds("again"); k[0] != "subscribed" || countOf(k, "live") != 1 {
		t.Errorf("frames %v", k)
	}
}

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// A subscriber that resumes from a position the log no longer keeps, or one it never
// gave out, gets an error frame and no subscription.
func TestSubscribeOutsideTheLog(t *testing.T) {
	f := newFixture(t, events.ProcessorOptions{})
	ctx := context.Background()
	short := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	log := short.EventLog(time.Nanosecond)
	svc := events.NewService(log, short, f.poster, short, logs.New(&bytes.Buffer{}, "error"), 24*time.Hour)
	proc := events.NewProcessor(log, short, f.poster, logs.New(&bytes.Buffer{}, "error"), events.ProcessorOptions{})
	if _, err := proc.Process(ctx, []events.Change{f.agentChange("did:web:1", "a"), f.agentChange("did:web:2", "a")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := svc.Connect(ctx, "late", events.Viewer{Subject: "did:key:l"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ after, mention string }{
		{"1", "older than the event log keeps events (24h0m0s)"},
		{"9", "never given out"},
	} {
		if err := svc.Receive(ctx, "late", []byte(`{"action":"subscribe","id":"r","after":"`+tt.after+`"}`)); err != nil {
			t.Fatal(err)
		}
		frames := f.poster.frames["late"]
		last := frames[len(frames)-1]
		if last.Kind != events.KindError || last.Code != federation.ENOTFOUND || last.ID != "r" || !bytes.Contains([]byte(last.Message), []byte(tt.mention)) {
			t.Errorf("after %s: %+v", tt.after, last)
		}
	}
	if c, _ := short.Connection(ctx, "late"); c.Sub.ID != "" {
		t.Errorf("subscribed anyway: %+v", c.Sub)
	}
	// The head itself is fine: nothing to replay.
	if err := svc.Receive(ctx, "late", []byte(`{"action":"subscribe","after":"2"}`)); err != nil {
		t.Fatal(err)
	}
	if c, _ := short.Connection(ctx, "late"); c.Sub.State != events.SubPending || c.Sub.After != 2 {
		t.Errorf("subscription at the head: %+v", c.Sub)
	}
}

// A gone connection is forgotten; one that stalls is closed after the post timeout; the
// others get their events all the same.
func TestProcessorFailingSubscribers(t *testing.T) {
	f := newFixture(t, events.ProcessorOptions{PostTimeout: 200 * time.Millisecond})
	for _, id := range []string{"ok", "gone", "stalled"} {
		f.connect(t, id, events.Viewer{Subject: "did:key:" + id}, `{"action":"subscribe"}`)
	}
	f.poster.mu.Lock()
	f.poster.gone["gone"], f.poster.stall["stalled"] = true, true
	f.poster.mu.Unlock()
	f.process(t, f.agentChange("did:web:1", "alpha"), f.agentChange("did:web:2", "alpha"))

	if got := f.poster.events("ok"); !equal(got, []string{"rec-1", "rec-2"}) {
		t.Errorf("ok received %v", got)
	}
	ctx := context.Background()
	for _, id := range []string{"gone", "stalled"} {
		if _, err := f.store.Connection(ctx, id); federation.ErrorCode(err) != federation.ENOTFOUND {
			t.Errorf("%s is still recorded: %v", id, err)
		}
	}
	if n := f.proc.Gone(); n != 1 {
		t.Errorf("%d connections counted gone, want 1", n)
	}
	if !f.poster.closed["stalled"] || f.poster.closed["gone"] {
		t.Errorf("closed: %v; want the stalled one closed (it resumes), the gone one not", f.poster.closed)
	}
	if head, _ := f.log.Head(ctx); head.Sent != head.N {
		t.Errorf("head %+v: the events count as sent once every connection got them or was closed", head)
	}
}

// A run that appended events and died before sending them: the next run closes the
// connections those events were for (their subscribers resume from their positions and
// get them once), and a retry of the batch neither appends nor sends them again.
func TestProcessorRecoversAnInterruptedRun(t *testing.T) {
	f := newFixture(t, events.ProcessorOptions{})
	f.connect(t, "wants", events.Viewer{Subject: "did:key:w"}, `{"action":"subscribe","types":["agent.*"]}`)
	f.connect(t, "other", events.Viewer{Subject: "did:key:o"}, `{"action":"subscribe","types":["registry.*"]}`)
	ctx := context.Background()
	batch := []events.Change{f.agentChange("did:web:1", "alpha")}
	// The interrupted run: appended, never sent.
	if _, _, err := f.log.Append(ctx, 0, events.Derive(batch[0])); err != nil {
		t.Fatal(err)
	}
	f.process(t, batch...) // the stream retries the batch

	if got := f.poster.events("wants"); len(got) != 0 {
		t.Errorf("the retry sent %v again", got)
	}
	if !f.poster.closed["wants"] || f.poster.closed["other"] {
		t.Errorf("closed %v; want only the connection the event was for", f.poster.closed)
	}
	head, _ := f.log.Head(ctx)
	if head.N != 1 || head.Sent != 1 {
		t.Errorf("head %+v", head)
	}
	// Its subscriber reconnects and resumes from before the event: it gets it, once.
	f.connect(t, "wants-again", events.Viewer{Subject: "did:key:w"}, `{"action":"subscribe","types":["agent.*"],"after":"0"}`)
	if got := f.poster.events("wants-again"); !equal(got, []string{"rec-1"}) {
		t.Errorf("resumed subscriber received %v", got)
	}
}

// A log write that fails ends the batch at the first change whose events were not
// appended: the stream gives that change and the rest again.
func TestProcessorReportsTheFirstChangeNotHandled(t *testing.T) {
	f := newFixture(t, events.ProcessorOptions{})
	ctx := context.Background()
	broken := events.NewProcessor(&brokenLog{f.log, 1}, f.store, f.poster, logs.New(&bytes.Buffer{}, "error"), events.ProcessorOptions{})
	changes := []events.Change{f.agentChange("did:web:1", "a"), f.agentChange("did:web:2", "a"), f.agentChange("did:web:3", "a")}
	var many []events.Change
	for range events.MaxAppend {
		many = append(many, f.agentChange("did:web:x", "a"))
	}
	// 49 events fill the first append, the 50th fails in the second.
	n, err := broken.Process(ctx, append(many, changes...))
	if err == nil || n != events.MaxAppend {
		t.Fatalf("processed %d, %v; want %d and an error", n, err, events.MaxAppend)
	}
	n, err = f.proc.Process(ctx, append(many, changes...)[n:])
	if err != nil || n != len(changes) {
		t.Fatal(n, err)
	}
	if head, _ := f.log.Head(ctx); head.N != events.MaxAppend+3 {
		t.Errorf("head %+v", head)
	}
}

// brokenLog fails every Append after the first ok ones.
type brokenLog struct {
	events.Log
	ok int
}

func (b *brokenLog) Append(ctx context.Context, head events.Position, evs []events.Event) ([]events.Event, []string, error) {
	if b.ok == 0 {
		return nil, nil, errors.New("the table is down")
	}
	b.ok--
	return b.Log.Append(ctx, head, evs)
}
