package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

// The events section's settings.
const (
	eventsSubscriber = "acme/weather-bot" // a demo agent with a did:key: the subscribers' credential
	eventsWarmup     = 5                  // events sent before the timed ones
	eventsWait       = 15 * time.Second   // for every subscriber to receive one event
	eventsConnect    = 16                 // subscribers connecting at once
	eventsSetup      = 3 * time.Minute
)

// eventsResults is what the events section measured.
type eventsResults struct {
	Runs   []eventsRun
	Poll   time.Duration // how often the stream poller reads the stream
	Memory int           // EventsFunction's memory, MB
	Sizes  itemSizes
	Phases []phase
}

// eventsRun is one measured run: changes written to the table, each an event every
// subscriber wants.
type eventsRun struct {
	Name        string
	Subscribers int
	Events      int
	Burst       bool            // written at once, not one after the other's delivery
	Latencies   []time.Duration // write done → frame read, every subscriber's
	Missing     int             // frames that never came within eventsWait
	Duplicates  int             // frames of an event a subscriber had already received
	Took        time.Duration   // from the first write to the last frame
	Posts       int             // @connections POSTs
	Invocations int             // of EventsFunction
	Busy        time.Duration   // its invocations' time
	Calls       int             // its DynamoDB calls, from its batch log lines
	Appended    int             // events it appended, likewise
}

// itemSizes are the table items an event costs, for the write and read units.
type itemSizes struct {
	Entry, Claim, Connection int // bytes, as DynamoDB counts an item's size
}

// eventsBench measures the event streams through the local stack.
type eventsBench struct {
	fed    *demo.Federation
	stack  *devstack.Stack
	store  *dynamo.Store
	agent  *demo.Agent
	log    *batchLog
	seq    atomic.Int64
	res    eventsResults
	conns  []*benchSubscriber
	writes sync.Map // subject -> time.Time the write returned
}

// benchEvents runs the section: the latency from a table write to every subscriber's
// receipt with 1 and with many subscribers, and what each event costs.
func benchEvents(ctx context.Context, tmplPath string, subscribers, count int) (eventsResults, error) {
	b := &eventsBench{log: &batchLog{}}
	defer b.close()
	setup, cancel := context.WithTimeout(ctx, eventsSetup)
	defer cancel()
	if err := b.setUp(setup, tmplPath); err != nil {
		return b.res, err
	}
	for _, r := range []struct {
		name        string
		subscribers int
		events      int
		burst       bool
	}{
		{"1 subscriber, one event at a time", 1, count, false},
		{fmt.Sprintf("%d subscribers, one event at a time", subscribers), subscribers, max(count/4, 10), false},
		{fmt.Sprintf("1 subscriber, %d events written at once", count), 1, count, true},
	} {
		start := time.Now()
		progress("events: %s", r.name)
		run, err := b.run(ctx, r.name, r.subscribers, r.events, r.burst)
		if err != nil {
			return b.res, fmt.Errorf("%s: %w", r.name, err)
		}
		b.res.Runs = append(b.res.Runs, run)
		b.phase(r.name, start)
	}
	var err error
	b.res.Sizes, err = b.sizes(ctx)
	return b.res, err
}

func (b *eventsBench) phase(name string, start time.Time) {
	b.res.Phases = append(b.res.Phases, phase{Name: name, Took: time.Since(start)})
}

// setUp starts the demo federation (for credentials) and the stack's event stream
// functions behind the local WebSocket API and stream poller.
func (b *eventsBench) setUp(ctx context.Context, tmplPath string) error {
	start := time.Now()
	var err error
	if b.fed, err = demo.Start(ctx, demo.Options{}); err != nil {
		return fmt.Errorf("demo federation: %w", err)
	}
	if b.agent = b.fed.Agent(eventsSubscriber); b.agent == nil || b.agent.Key == nil {
		return fmt.Errorf("the demo has no agent %s with a did:key", eventsSubscriber)
	}
	dir, err := os.MkdirTemp("", "bench-events-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"allow_private_networks":true,"registries":[]}`), 0o600); err != nil {
		return err
	}
	progress("events: build and start the event stream's functions behind the local WebSocket API")
	b.stack, err = devstack.Start(ctx, devstack.Options{
		Template: tmplPath, Config: cfg, StackName: "bench-events", Stage: "bench",
		EndpointAddr: "127.0.0.1:0", APIAddr: "-", WebSocketAddr: "127.0.0.1:0",
		Functions: []string{"WsConnectFunction", "WsDisconnectFunction", "WsMessageFunction", "EventsFunction"},
		BuildDir:  filepath.Join(dir, "host"), Log: b.log,
	})
	if err != nil {
		return fmt.Errorf("local stack: %w", err)
	}
	b.store = dynamo.NewStore(dynamo.NewClient(devstack.LocalAWSConfig(b.stack.EndpointURL), true), b.stack.Template.Tables[0].Name)
	b.res.Poll = devstack.DefaultStreamPoll
	for _, fn := range b.stack.Template.Functions {
		if fn.LogicalID == "EventsFunction" {
			b.res.Memory = fn.MemoryMB
		}
	}
	b.phase("start the demo federation and the local stack (4 functions)", start)
	return nil
}

func (b *eventsBench) close() {
	for _, c := range b.conns {
		_ = c.c.CloseNow()
	}
	if b.stack != nil {
		b.stack.Close()
	}
	if b.fed != nil {
		_ = b.fed.Close()
	}
}

// run measures one run: it brings the subscribers to n, then writes the events.
func (b *eventsBench) run(ctx context.Context, name string, n, count int, burst bool) (eventsRun, error) {
	run := eventsRun{Name: name, Subscribers: n, Events: count, Burst: burst}
	if err := b.subscribers(ctx, n); err != nil {
		return run, err
	}
	for range eventsWarmup {
		if err := b.deliver(ctx, b.write(ctx)); err != nil {
			return run, fmt.Errorf("warm-up: %w", err)
		}
	}
	ws0, st0, log0 := b.stack.WebSocketStats(), b.stack.StreamStats("EventsStreamMapping"), b.log.totals()
	for _, c := range b.conns {
		c.reset()
	}
	start := time.Now()
	var subjects []string
	if burst {
		for range count {
			subjects = append(subjects, b.write(ctx))
		}
		for _, s := range subjects {
			if err := b.deliver(ctx, s); err != nil {
				return run, err
			}
		}
	} else {
		for range count {
			// At a random moment of the poller's interval, as changes come: right after a
			// delivery the poller would find the next write at once.
			time.Sleep(time.Duration(rand.Int64N(int64(devstack.DefaultStreamPoll))))
			s := b.write(ctx)
			subjects = append(subjects, s)
			if err := b.deliver(ctx, s); err != nil {
				return run, err
			}
		}
	}
	run.Took = time.Since(start)
	for _, c := range b.conns {
		lat, missing, dups := c.results(subjects, &b.writes)
		run.Latencies = append(run.Latencies, lat...)
		run.Missing += missing
		run.Duplicates += dups
	}
	// The function logs a batch after it posted the batch's frames: wait for the lines.
	lg := b.log.totals()
	for deadline := time.Now().Add(5 * time.Second); lg.events-log0.events < len(subjects); lg = b.log.totals() {
		if time.Now().After(deadline) {
			return run, fmt.Errorf("EventsFunction logged %d events appended of %d written: its batch log lines were not read", lg.events-log0.events, len(subjects))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ws, st := b.stack.WebSocketStats(), b.stack.StreamStats("EventsStreamMapping")
	run.Posts = ws.Posts - ws0.Posts
	run.Invocations, run.Busy = st.Invocations-st0.Invocations, st.Busy-st0.Busy
	run.Calls, run.Appended = lg.calls-log0.calls, lg.events-log0.events
	return run, nil
}

// write makes one event: a registry's first sync failed (registry.unhealthy).
func (b *eventsBench) write(ctx context.Context) string {
	id := fmt.Sprintf("bench-%d", b.seq.Add(1))
	if err := b.store.SaveSyncState(ctx, directory.SyncState{RegistryState: federation.RegistryState{ID: id, LastError: "down"}}); err != nil {
		progress("events: write %s: %v", id, err)
	}
	b.writes.Store(id, time.Now())
	return id
}

// deliver waits until every subscriber received the event of subject, or eventsWait
// passed (the subscribers that did not are counted missing).
func (b *eventsBench) deliver(ctx context.Context, subject string) error {
	deadline := time.Now().Add(eventsWait)
	for _, c := range b.conns {
		if err := c.wait(ctx, subject, deadline); err != nil {
			return err
		}
	}
	return nil
}

// subscribers connects and subscribes, or disconnects, until there are n.
func (b *eventsBench) subscribers(ctx context.Context, n int) error {
	need := n - len(b.conns)
	if need <= 0 {
		for _, c := range b.conns[n:] {
			_ = c.c.Close(websocket.StatusNormalClosure, "")
		}
		b.conns = b.conns[:n]
		return nil
	}
	progress("events: connect and subscribe %d subscribers", need)
	out := make([]*benchSubscriber, need)
	errs := make([]error, need)
	sem := make(chan struct{}, eventsConnect)
	var wg sync.WaitGroup
	for i := range need {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = b.subscribe(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	b.conns = append(b.conns, out...)
	return nil
}

func (b *eventsBench) subscribe(ctx context.Context) (*benchSubscriber, error) {
	tok, err := demo.SignToken(b.agent.Key, b.agent.DID, "federation-gateway", time.Hour)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, b.stack.WebSocketURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := c.Write(dctx, websocket.MessageText, []byte(`{"action":"subscribe","types":["registry.*"]}`)); err != nil {
		return nil, err
	}
	for {
		_, data, err := c.Read(dctx)
		if err != nil {
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		var f events.Frame
		_ = json.Unmarshal(data, &f)
		if f.Kind == events.KindError {
			return nil, fmt.Errorf("subscribe: %s", f.Message)
		}
		if f.Kind == events.KindLive {
			break
		}
	}
	s := &benchSubscriber{c: c, seen: map[string]time.Time{}, changed: make(chan struct{})}
	go s.read(ctx)
	return s, nil
}

// benchSubscriber is one subscriber's connection and the frames it read.
type benchSubscriber struct {
	c       *websocket.Conn
	mu      sync.Mutex
	seen    map[string]time.Time // subject -> when its frame was read
	dups    int
	changed chan struct{} // closed and replaced at every frame
	err     error
}

func (s *benchSubscriber) read(ctx context.Context) {
	for {
		_, data, err := s.c.Read(ctx)
		at := time.Now()
		s.mu.Lock()
		if err != nil {
			s.err = err
		} else {
			var f events.Frame
			if json.Unmarshal(data, &f) == nil && f.Kind == events.KindEvent && f.Event != nil {
				if _, ok := s.seen[f.Event.Subject]; ok {
					s.dups++
				} else {
					s.seen[f.Event.Subject] = at
				}
			}
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *benchSubscriber) wait(ctx context.Context, subject string, deadline time.Time) error {
	for {
		s.mu.Lock()
		_, ok := s.seen[subject]
		ch, err := s.changed, s.err
		s.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("a subscriber's connection ended: %w", err)
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			return nil // counted as missing
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *benchSubscriber) reset() {
	s.mu.Lock()
	s.seen, s.dups = map[string]time.Time{}, 0
	s.mu.Unlock()
}

func (s *benchSubscriber) results(subjects []string, writes *sync.Map) (lat []time.Duration, missing, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, subj := range subjects {
		at, ok := s.seen[subj]
		w, _ := writes.Load(subj)
		if !ok || w == nil {
			missing++
			continue
		}
		lat = append(lat, at.Sub(w.(time.Time)))
	}
	return lat, missing, s.dups
}

// sizes reads the items an event writes (its log entry and its ID's claim) and a
// subscriber's connection, and measures them as DynamoDB sizes an item.
func (b *eventsBench) sizes(ctx context.Context) (itemSizes, error) {
	db := dynamo.NewClient(devstack.LocalAWSConfig(b.stack.EndpointURL), true)
	table := aws.String(b.stack.Template.Tables[0].Name)
	head, err := b.store.EventLog(time.Hour).Head(ctx)
	if err != nil {
		return itemSizes{}, err
	}
	get := func(pk, sk string) (map[string]ddbtypes.AttributeValue, error) {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]ddbtypes.AttributeValue{
			"PK": &ddbtypes.AttributeValueMemberS{Value: pk}, "SK": &ddbtypes.AttributeValueMemberS{Value: sk}}})
		if err != nil || out.Item == nil {
			return nil, fmt.Errorf("read %s %s: %v", pk, sk, err)
		}
		return out.Item, nil
	}
	entry, err := get("EVENTS", head.N.String())
	if err != nil {
		return itemSizes{}, err
	}
	id, _ := entry["id"].(*ddbtypes.AttributeValueMemberS)
	claim, err := get("EVENT#"+id.Value, "LOGGED")
	if err != nil {
		return itemSizes{}, err
	}
	conns, err := db.Query(ctx, &dynamodb.QueryInput{TableName: table, KeyConditionExpression: aws.String("PK = :pk"), Limit: aws.Int32(1),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: "CONN"}}})
	if err != nil || len(conns.Items) == 0 {
		return itemSizes{}, fmt.Errorf("read a connection: %v", err)
	}
	return itemSizes{Entry: itemSize(entry), Claim: itemSize(claim), Connection: itemSize(conns.Items[0])}, nil
}

// batchLog reads EventsFunction's log lines: each batch says what it cost.
type batchLog struct {
	mu      sync.Mutex
	partial []byte
	calls   int
	events  int
}

type batchTotals struct{ calls, events int }

func (l *batchLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	end := bytes.LastIndexByte(l.partial, '\n')
	if end < 0 {
		return len(p), nil
	}
	for _, line := range strings.Split(string(l.partial[:end]), "\n") {
		fn, js, ok := strings.Cut(line, " | ")
		fn, _, _ = strings.Cut(strings.TrimSpace(fn), "@") // <function>@<instance>
		if !ok || fn != "EventsFunction" {
			continue
		}
		var rec struct {
			Msg    string `json:"msg"`
			Events int    `json:"events"`
			Calls  int    `json:"dynamodb_calls"`
		}
		if json.Unmarshal([]byte(js), &rec) == nil && rec.Msg == "batch" {
			l.calls += rec.Calls
			l.events += rec.Events
		}
	}
	l.partial = append([]byte(nil), l.partial[end+1:]...)
	return len(p), nil
}

func (l *batchLog) totals() batchTotals {
	l.mu.Lock()
	defer l.mu.Unlock()
	return batchTotals{calls: l.calls, events: l.events}
}
