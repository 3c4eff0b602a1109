package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Defaults of ProcessorOptions.
const (
	DefaultConcurrency = 32
	DefaultPostTimeout = 3 * time.Second
	DefaultReplayChunk = 200
)

// ProcessorOptions tune a Processor; zero values take the defaults.
type ProcessorOptions struct {
	// Concurrency bounds the connections posted to at once.
	Concurrency int
	// PostTimeout bounds one post: a connection that takes longer is closed (its
	// subscriber resumes), so it never holds back the others.
	PostTimeout time.Duration
	// ReplayChunk bounds the log entries one run replays to a new subscription; the rest
	// is served by the next runs, so a long replay never holds live events back.
	ReplayChunk int
}

// Processor appends the events of the table's changes to the log and sends them to the
// live subscriptions, and serves new subscriptions from the log. It is the log's only
// appender and the only sender of events: run one at a time (the events function has a
// reserved concurrency of 1).
type Processor struct {
	log    Log
	conns  Connections
	poster Poster
	logger *slog.Logger
	opts   ProcessorOptions

	// Counters, for the logs, the metrics and the benchmark.
	posts    atomic.Int64
	appended atomic.Int64
	gone     atomic.Int64
}

// NewProcessor returns a Processor.
func NewProcessor(log Log, conns Connections, poster Poster, logger *slog.Logger, opts ProcessorOptions) *Processor {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.PostTimeout <= 0 {
		opts.PostTimeout = DefaultPostTimeout
	}
	if opts.ReplayChunk <= 0 {
		opts.ReplayChunk = DefaultReplayChunk
	}
	return &Processor{log: log, conns: conns, poster: poster, logger: logger, opts: opts}
}

// Counts returns how many events the processor appended and how many frames it posted
// so far.
func (p *Processor) Counts() (appended, posts int64) { return p.appended.Load(), p.posts.Load() }

// Gone returns how many connections a post found gone (410) so far.
func (p *Processor) Gone() int64 { return p.gone.Load() }

// Process handles a batch of changes in the order of the stream. It returns how many of
// them it handled: when that is fewer than all, err says why, and the rest (from the
// change at that index) must be given again, as the stream's partial batch response does.
// Changes handled are never lost and their events never sent twice, whatever fails.
func (p *Processor) Process(ctx context.Context, changes []Change) (int, error) {
	head, err := p.log.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the log's head: %w", err)
	}
	if head.Sent < head.N {
		if err := p.recover(ctx, head); err != nil {
			return 0, err
		}
		head.Sent = head.N
	}
	for i := 0; i < len(changes); {
		if sc := changes[i].Subscription; sc != nil {
			if err := p.serve(ctx, head, *sc); err != nil {
				return i, err
			}
			i++
			continue
		}
		// A run of changes up to the next subscription: append their events, then send.
		var evs []Event
		var owner []int // the change each event comes from
		j := i
		for ; j < len(changes) && changes[j].Subscription == nil; j++ {
			for _, e := range Derive(changes[j]) {
				evs = append(evs, e)
				owner = append(owner, j)
			}
		}
		appended, failed, err := p.append(ctx, &head, evs)
		if len(appended) > 0 {
			if p.send(ctx, appended) {
				if err := p.log.MarkSent(ctx, head.N); err != nil {
					// The next run finds Sent behind and closes the connections these
					// events were for: they resume, and get each event once.
					p.logger.WarnContext(ctx, "mark the log sent", "error", err)
				}
			}
		}
		if err != nil {
			return owner[failed], err
		}
		i = j
	}
	return len(changes), nil
}

// append appends evs in chunks, advancing head. It returns the events appended (in
// order) and, on error, the index in evs of the first event it could not append.
func (p *Processor) append(ctx context.Context, head *Head, evs []Event) ([]Event, int, error) {
	var out []Event
	for start := 0; start < len(evs); start += MaxAppend {
		chunk := evs[start:min(start+MaxAppend, len(evs))]
		var appended []Event
		var dup []string
		var err error
		for attempt := 0; ; attempt++ {
			appended, dup, err = p.log.Append(ctx, head.N, chunk)
			if federation.ErrorCode(err) != federation.ECONFLICT || attempt == 2 {
				break
			}
			// Another appender moved the head: a second run of the function, which the
			// reserved concurrency should prevent. Take the head again.
			h, herr := p.log.Head(ctx)
			if herr != nil {
				err = herr
				break
			}
			head.N = h.N
		}
		if err != nil {
			return out, start, fmt.Errorf("append %d events to the log: %w", len(chunk), err)
		}
		if len(dup) > 0 {
			p.logger.InfoContext(ctx, "events already in the log", "ids", dup)
		}
		for _, e := range appended {
			head.N = max(head.N, e.Position)
		}
		p.appended.Add(int64(len(appended)))
		out = append(out, appended...)
	}
	return out, len(evs), nil
}

// send posts evs to every live subscription that wants them, each connection's in
// order, connections side by side. It reports whether every connection got its events or
// was closed (so the events are sent).
func (p *Processor) send(ctx context.Context, evs []Event) bool {
	conns, err := p.conns.Live(ctx)
	if err != nil {
		p.logger.ErrorContext(ctx, "list the live subscriptions", "error", err)
		return false
	}
	var ok atomic.Bool
	ok.Store(true)
	sem := make(chan struct{}, p.opts.Concurrency)
	var wg sync.WaitGroup
	for _, c := range conns {
		var mine []Event
		for _, e := range evs {
			if c.wants(e) {
				mine = append(mine, e)
			}
		}
		if len(mine) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, e := range mine {
				if err := p.post(ctx, c.ID, EventFrame(c.Sub.ID, e)); err != nil {
					if !p.drop(ctx, c.ID, err) {
						ok.Store(false)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load()
}

// post sends one frame within the post timeout.
func (p *Processor) post(ctx context.Context, id string, frame []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.PostTimeout)
	defer cancel()
	p.posts.Add(1)
	return p.poster.Post(ctx, id, frame)
}

// drop ends a connection a post failed on: a gone one is forgotten, any other closed so
// that its subscriber resumes from the last event it received. It reports whether the
// connection is surely closed.
func (p *Processor) drop(ctx context.Context, id string, cause error) bool {
	closed := true
	if errors.Is(cause, ErrGone) {
		p.gone.Add(1)
	} else {
		p.logger.WarnContext(ctx, "close a connection a post failed on", "connection", id, "error", cause)
		cctx, cancel := context.WithTimeout(ctx, p.opts.PostTimeout)
		err := p.poster.Close(cctx, id)
		cancel()
		if err != nil && !errors.Is(err, ErrGone) {
			p.logger.ErrorContext(ctx, "close a connection", "connection", id, "error", err)
			closed = false
		}
	}
	if err := p.conns.DeleteConnection(ctx, id); err != nil {
		p.logger.WarnContext(ctx, "forget a connection", "connection", id, "error", err)
	}
	return closed
}

// recover finishes the sending of a run that appended events and stopped before it had
// sent them all: it cannot know who got which, so it closes every connection that wanted
// one of them, and their subscribers resume from their positions.
func (p *Processor) recover(ctx context.Context, head Head) error {
	evs, err := p.log.Read(ctx, head.Sent, head.N, int(head.N-head.Sent))
	if err != nil {
		return fmt.Errorf("read the events not sent: %w", err)
	}
	conns, err := p.conns.Live(ctx)
	if err != nil {
		return fmt.Errorf("list the live subscriptions: %w", err)
	}
	closed := 0
	for _, c := range conns {
		for _, e := range evs {
			if c.wants(e) {
				if !p.drop(ctx, c.ID, errors.New("events of an interrupted run")) {
					return fmt.Errorf("close connection %s", c.ID)
				}
				closed++
				break
			}
		}
	}
	p.logger.WarnContext(ctx, "a run stopped before sending its events; their subscribers resume",
		"from", head.Sent.String(), "to", head.N.String(), "closed", closed)
	if err := p.log.MarkSent(ctx, head.N); err != nil {
		return fmt.Errorf("mark the log sent: %w", err)
	}
	return nil
}

// serve replays the log to a pending subscription and turns it live, or, when the
// replay is longer than a chunk, replays a chunk and leaves the rest to the next run.
func (p *Processor) serve(ctx context.Context, head Head, sc SubscriptionChange) error {
	c, err := p.conns.Connection(ctx, sc.Connection)
	if federation.ErrorCode(err) == federation.ENOTFOUND {
		return nil // disconnected meanwhile
	}
	if err != nil {
		return fmt.Errorf("read connection %s: %w", sc.Connection, err)
	}
	if c.Sub.ID != sc.Subscription || c.Sub.State != SubPending {
		return nil // served already, or replaced by a newer subscribe
	}
	evs, err := p.log.Read(ctx, c.Sub.After, head.N, p.opts.ReplayChunk)
	if err != nil {
		return fmt.Errorf("replay to %s: %w", c.ID, err)
	}
	v := c.viewer()
	for _, e := range evs {
		if v.CanSee(e) && c.Sub.Filter.Match(e) {
			if err := p.post(ctx, c.ID, EventFrame(c.Sub.ID, e)); err != nil {
				p.drop(ctx, c.ID, err)
				return nil
			}
		}
	}
	if n := len(evs); n == p.opts.ReplayChunk && evs[n-1].Position < head.N {
		err = p.conns.ContinueReplay(ctx, c.ID, c.Sub.ID, evs[n-1].Position)
	} else {
		err = p.conns.GoLive(ctx, c.ID, c.Sub.ID, head.N)
		if err == nil {
			pos := head.N
			if perr := p.post(ctx, c.ID, Encode(Frame{Kind: KindLive, Subscription: c.Sub.ID, Position: &pos})); perr != nil {
				p.drop(ctx, c.ID, perr)
			}
		}
	}
	switch federation.ErrorCode(err) {
	case "", federation.ECONFLICT: // a newer subscribe replaced it: that one is served next
	default:
		// What was replayed cannot be taken back: close the connection, and its
		// subscriber resumes from the last event it received.
		p.drop(ctx, c.ID, err)
	}
	return nil
}
