// Package subscriber is a client of the gateway's event streams: it connects to the
// WebSocket API with a credential, subscribes, hands over each event in order, pings
// within API Gateway's idle limit, and when the connection ends (a network failure, the
// idle limit, the 2-hour connection limit, a server that closed it) connects again and
// resumes after the last event it received, so that no event is lost or seen twice.
// The command-line subscriber (infra/cmd/subscribe), the tests and the benchmark use it.
package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/wsapi"
)

// Options configure a Subscriber.
type Options struct {
	// URL is the WebSocket API's URL (wss://.../<stage>, or ws://127.0.0.1:3001/local).
	URL string
	// Token returns a credential (a JWT) for each connection: the gateway accepts a JWT
	// once, so every connection needs a fresh one.
	Token func(ctx context.Context) (string, error)
	// Subprotocol sends the token as the bearer.<JWT> subprotocol, as a browser must,
	// instead of in the Authorization header.
	Subprotocol bool
	// Filter is what to subscribe to.
	Filter events.Filter
	// After is the position to resume after ("" starts from now).
	After string
	// Ping is how often to ping (default 4 minutes, well within the 10-minute idle limit).
	Ping time.Duration
	// Reconnect makes Run connect again when a connection ends, after a pause that grows
	// from MinBackoff (default 200 ms) to 10 s while connections keep failing (ending
	// before their subscription went live and brought no event).
	Reconnect  bool
	MinBackoff time.Duration
	// OnEvent receives each event once, in order. An error ends Run with it.
	OnEvent func(events.Event) error
	// OnFrame, when set, sees every frame the gateway sends (before OnEvent), and
	// OnState the connection's changes ("connected", "live", "disconnected: ...").
	OnFrame func(events.Frame)
	OnState func(string)
}

// Subscriber is a running subscription.
type Subscriber struct {
	opts Options

	mu         sync.Mutex
	last       events.Position // of the last event handed over
	hasLast    bool
	stats      Stats
	connection *websocket.Conn
}

// Stats counts what a Subscriber saw.
type Stats struct {
	Connections int // connections made
	Events      int // events handed over
	// Duplicates are events the gateway sent at or before a position already handed over:
	// they are dropped. The gateway's guarantee is that there are none.
	Duplicates int
	// Stale are events of a subscription the subscriber replaced.
	Stale int
	// Live are the connections whose subscription went live.
	Live int
}

// New returns a Subscriber; Run runs it.
func New(opts Options) (*Subscriber, error) {
	if opts.URL == "" || opts.Token == nil || opts.OnEvent == nil {
		return nil, errors.New("subscriber: URL, Token and OnEvent are required")
	}
	if opts.Ping <= 0 {
		opts.Ping = 4 * time.Minute
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	s := &Subscriber{opts: opts}
	if opts.After != "" {
		p, err := events.ParsePosition(opts.After)
		if err != nil {
			return nil, fmt.Errorf("subscriber: after: %w", err)
		}
		s.last, s.hasLast = p, true
	}
	return s, nil
}

// Position returns the position of the last event handed over ("" before the first).
func (s *Subscriber) Position() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasLast {
		return ""
	}
	return s.last.String()
}

// Stats returns the counts so far.
func (s *Subscriber) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Drop closes the current connection, as a network failure would (tests).
func (s *Subscriber) Drop() {
	s.mu.Lock()
	c := s.connection
	s.mu.Unlock()
	if c != nil {
		_ = c.CloseNow()
	}
}

// ErrRefused wraps a refusal that connecting again cannot cure: the credential (HTTP
// 401, 403) or the subscription (an error frame).
var ErrRefused = errors.New("refused")

// Run subscribes until ctx ends (it then returns nil), OnEvent fails, or the gateway
// refuses the credential or the subscription; with Reconnect, any other end of a
// connection is followed by a new one.
func (s *Subscriber) Run(ctx context.Context) error {
	backoff := s.opts.MinBackoff
	for {
		before := s.Stats()
		err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrRefused) || !s.opts.Reconnect {
			return err
		}
		s.state("disconnected: " + err.Error())
		// A connection that went live or brought events did its work, however short it
		// was (API Gateway ends every connection at its maximum age): connect again after
		// the shortest pause. Only connections that keep failing back off.
		if after := s.Stats(); after.Live > before.Live || after.Events > before.Events {
			backoff = s.opts.MinBackoff
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *Subscriber) state(st string) {
	if s.opts.OnState != nil {
		s.opts.OnState(st)
	}
}

// session is one connection: connect, subscribe after the last position, read.
func (s *Subscriber) session(ctx context.Context) error {
	token, err := s.opts.Token(ctx)
	if err != nil {
		return fmt.Errorf("credential: %w", err)
	}
	dial := &websocket.DialOptions{}
	if s.opts.Subprotocol {
		dial.Subprotocols = []string{wsapi.Subprotocol, wsapi.BearerProtocol + token}
	} else {
		dial.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	c, resp, err := websocket.Dial(dctx, s.opts.URL, dial)
	cancel()
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			var p struct{ Detail string }
			if resp.Body != nil {
				_ = json.NewDecoder(resp.Body).Decode(&p)
			}
			return &RefusedError{Status: resp.StatusCode, Message: p.Detail}
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	s.mu.Lock()
	s.connection = c
	s.stats.Connections++
	after := ""
	if s.hasLast {
		after = s.last.String()
	}
	s.mu.Unlock()
	s.state("connected")

	req := map[string]any{"action": events.ActionSubscribe, "types": s.opts.Filter.Types, "registry": s.opts.Filter.Registry,
		"agent": s.opts.Filter.Agent, "transfer": s.opts.Filter.Transfer}
	if after != "" {
		req["after"] = after
	}
	b, _ := json.Marshal(req)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(s.opts.Ping)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				_ = c.Write(sctx, websocket.MessageText, []byte(`{"action":"ping"}`))
			}
		}
	}()

	var subscription string
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("connection ended: %w", err)
		}
		var f events.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			continue // not a frame of the protocol (an API Gateway message)
		}
		if s.opts.OnFrame != nil {
			s.opts.OnFrame(f)
		}
		switch f.Kind {
		case events.KindSubscribed:
			subscription = f.Subscription
		case events.KindLive:
			s.count(func(st *Stats) { st.Live++ })
			s.state("live")
		case events.KindError:
			if f.Action == events.ActionSubscribe {
				return &RefusedError{Code: f.Code, Message: f.Message}
			}
		case events.KindEvent:
			if f.Event == nil {
				continue
			}
			if f.Subscription != subscription {
				s.count(func(st *Stats) { st.Stale++ })
				continue
			}
			s.mu.Lock()
			dup := s.hasLast && f.Event.Position <= s.last
			if dup {
				s.stats.Duplicates++
			} else {
				s.last, s.hasLast = f.Event.Position, true
				s.stats.Events++
			}
			s.mu.Unlock()
			if !dup {
				if err := s.opts.OnEvent(*f.Event); err != nil {
					return &RefusedError{Err: err}
				}
			}
		}
	}
}

// RefusedError is a refusal: of the credential (Status 401 or 403), of the subscription
// (an error frame's Code and Message), or the event handler's error (Err).
type RefusedError struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *RefusedError) Error() string {
	switch {
	case e.Err != nil:
		return "the event handler stopped: " + e.Err.Error()
	case e.Status != 0:
		return fmt.Sprintf("the gateway refused the connection: %d %s", e.Status, e.Message)
	default:
		return fmt.Sprintf("the gateway refused the subscription: %s (%s)", e.Message, e.Code)
	}
}

// Is makes every RefusedError an ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Unwrap returns the event handler's error.
func (e *RefusedError) Unwrap() error { return e.Err }

func (s *Subscriber) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// IsExpired reports whether err refuses a position the gateway's log no longer keeps (or
// never gave out): subscribe again without one.
func IsExpired(err error) bool {
	var re *RefusedError
	return errors.As(err, &re) && re.Code == federation.ENOTFOUND
}
