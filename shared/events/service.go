package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// API Gateway's limits of a WebSocket connection.
const (
	// MaxConnectionAge is how long API Gateway keeps a connection: a connection record
	// expires a little after it.
	MaxConnectionAge = 2 * time.Hour
	// IdleTimeout is how long API Gateway keeps a connection that sends nothing: clients
	// ping well within it.
	IdleTimeout = 10 * time.Minute
	// DefaultRetention is how long the log keeps an event.
	DefaultRetention = 24 * time.Hour
)

// Service is what the WebSocket API's functions do for a connection: record it when it
// connects, forget it when it goes, and answer its frames.
type Service struct {
	log    Log
	conns  Connections
	poster Poster
	agents Agents
	logger *slog.Logger
	now    func() time.Time
	// retention is the log's, for the messages of an expired position.
	retention time.Duration
}

// NewService returns a Service. retention is the log's retention (0: DefaultRetention).
func NewService(log Log, conns Connections, poster Poster, agents Agents, logger *slog.Logger, retention time.Duration) *Service {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Service{log: log, conns: conns, poster: poster, agents: agents, logger: logger, now: time.Now, retention: retention}
}

// Connect records a verified subscriber's connection.
func (s *Service) Connect(ctx context.Context, id string, v Viewer) error {
	now := s.now()
	c := Connection{ID: id, Viewer: v, ConnectedAt: now}
	if err := s.conns.PutConnection(ctx, c, now.Add(MaxConnectionAge+time.Minute)); err != nil {
		return fmt.Errorf("record connection %s: %w", id, err)
	}
	return nil
}

// Disconnect forgets a connection.
func (s *Service) Disconnect(ctx context.Context, id string) error {
	return s.conns.DeleteConnection(ctx, id)
}

// Receive answers a frame a connection sent: every frame gets an answer frame, a bad one
// an error frame. It returns an error only when the answer could not be sent.
func (s *Service) Receive(ctx context.Context, id string, body []byte) error {
	req, err := DecodeRequest(body)
	var answer []byte
	switch {
	case err != nil:
		answer = ErrorFrame(req.ID, req.Action, err)
	case req.Action == ActionPing:
		answer = Encode(Frame{Kind: KindPong, ID: req.ID, Time: s.now().UTC()})
	case req.Action == ActionUnsubscribe:
		if err := s.conns.Unsubscribe(ctx, id); err != nil {
			s.logger.ErrorContext(ctx, "unsubscribe", "connection", id, "error", err)
			answer = ErrorFrame(req.ID, req.Action, err)
		} else {
			answer = Encode(Frame{Kind: KindUnsubscribed, ID: req.ID})
		}
	case req.Action == ActionSubscribe:
		// The subscribe posts its own answer: it must reach the subscriber before the
		// first replayed event, which may follow as soon as the subscription is written.
		return s.subscribe(ctx, id, req)
	}
	return s.post(ctx, id, answer)
}

func (s *Service) post(ctx context.Context, id string, frame []byte) error {
	if err := s.poster.Post(ctx, id, frame); err != nil {
		return fmt.Errorf("answer connection %s: %w", id, err)
	}
	return nil
}

// subscribe checks a subscription, answers it, and writes it for the appender to serve.
func (s *Service) subscribe(ctx context.Context, id string, req Request) error {
	fail := func(err error) error {
		if federation.ErrorCode(err) == federation.EINTERNAL || federation.ErrorCode(err) == federation.EUNAVAILABLE {
			s.logger.ErrorContext(ctx, "subscribe", "connection", id, "error", err)
		}
		return s.post(ctx, id, ErrorFrame(req.ID, req.Action, err))
	}
	c, err := s.conns.Connection(ctx, id)
	if federation.ErrorCode(err) == federation.ENOTFOUND {
		return fail(federation.Errorf(federation.EUNAUTHORIZED, "this connection is no longer authenticated; connect again"))
	}
	if err != nil {
		return fail(err)
	}
	sub := Subscription{ID: newSubscriptionID(), State: SubPending, Filter: req.Filter}
	if a := req.Filter.Agent; a != "" && a != c.Viewer.Subject && !c.Viewer.Operator && !slices.Contains(c.Viewer.Acting, a) {
		// Filtering by another agent is always allowed; acting for it (seeing its messages
		// and transfers) only when its directory record declares the subscriber.
		rec, err := s.agents.Agent(ctx, a)
		switch federation.ErrorCode(err) {
		case "":
			if slices.Contains(rec.Identities, c.Viewer.Subject) {
				sub.Acting = []string{a}
			}
		case federation.ENOTFOUND:
		default:
			return fail(err)
		}
	}
	head, err := s.log.Head(ctx)
	if err != nil {
		return fail(err)
	}
	sub.After = head.N
	if req.After != nil {
		p := *req.After
		switch {
		case p > head.N:
			return fail(federation.Errorf(federation.ENOTFOUND, "position %s was never given out by this gateway; use the position of an event you received", p))
		case p < head.N:
			// The replay starts at p+1: it must still be in the log, or events are lost.
			ok, err := s.log.Retained(ctx, p+1)
			if err != nil {
				return fail(err)
			}
			if !ok {
				return fail(federation.Errorf(federation.ENOTFOUND, "position %s is older than the event log keeps events (%s); "+
					"subscribe without after to start from now", p, s.retention))
			}
		}
		sub.After = p
	}
	after := sub.After
	if err := s.post(ctx, id, Encode(Frame{Kind: KindSubscribed, ID: req.ID, Subscription: sub.ID, Filter: &sub.Filter, Position: &after})); err != nil {
		return err
	}
	if err := s.conns.Subscribe(ctx, id, sub); err != nil {
		return fail(err)
	}
	return nil
}

func newSubscriptionID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "sub-" + hex.EncodeToString(b)
}
