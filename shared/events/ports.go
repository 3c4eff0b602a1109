package events

import (
	"context"
	"errors"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Log is the event log: events in position order, each once, kept for the retention.
type Log interface {
	// Head returns the log's head, read consistently.
	Head(ctx context.Context) (Head, error)
	// Append appends evs (at most MaxAppend) at the positions after head, all or none, and
	// returns those it appended with their positions. An event whose ID the log holds
	// already is left out: dup names them. Errors: ECONFLICT when the head is no longer
	// head (another appender took positions).
	Append(ctx context.Context, head Position, evs []Event) (appended []Event, dup []string, err error)
	// MarkSent records that every event up to p was sent to every live subscription.
	MarkSent(ctx context.Context, p Position) error
	// Read returns the events after after and up to upTo, in order, at most limit.
	Read(ctx context.Context, after, upTo Position, limit int) ([]Event, error)
	// Retained reports whether the event at p is in the log and within its retention.
	Retained(ctx context.Context, p Position) (bool, error)
}

// MaxAppend is the most events one Append takes: a DynamoDB transaction's 100 writes
// hold the head's and two per event.
const MaxAppend = 49

// Head is the head of the log.
type Head struct {
	// N is the last position taken; 0 when the log is empty.
	N Position
	// Sent is the last position whose event was sent to every live subscription that
	// wanted it (or whose connection was closed). Sent < N means an appender stopped
	// between appending and sending.
	Sent Position
}

// Connections stores the subscribers' connections and their subscriptions.
type Connections interface {
	// PutConnection records a connection until expires.
	PutConnection(ctx context.Context, c Connection, expires time.Time) error
	// Connection returns a connection. Errors: ENOTFOUND.
	Connection(ctx context.Context, id string) (Connection, error)
	// DeleteConnection forgets a connection; a connection it does not know is no error.
	DeleteConnection(ctx context.Context, id string) error
	// Subscribe gives a connection a pending subscription, replacing the one it had.
	// Errors: ENOTFOUND when the connection is not recorded.
	Subscribe(ctx context.Context, id string, s Subscription) error
	// Unsubscribe ends a connection's subscription.
	Unsubscribe(ctx context.Context, id string) error
	// Live returns the connections whose subscription is live.
	Live(ctx context.Context) ([]Connection, error)
	// GoLive turns a pending subscription live from position from. Errors: ECONFLICT when
	// it is no longer the connection's pending subscription.
	GoLive(ctx context.Context, id, subscription string, from Position) error
	// ContinueReplay moves a pending subscription's replay on to after, which the table's
	// stream reports as a change of the subscription: the next run serves the rest.
	// Errors: ECONFLICT as GoLive.
	ContinueReplay(ctx context.Context, id, subscription string, after Position) error
}

// Connection is a subscriber's WebSocket connection.
type Connection struct {
	ID          string
	Viewer      Viewer
	ConnectedAt time.Time
	Sub         Subscription
}

// viewer is the connection's viewer with the agents its subscription acts for.
func (c Connection) viewer() Viewer {
	v := c.Viewer
	v.Acting = append(append([]string(nil), v.Acting...), c.Sub.Acting...)
	return v
}

// wants reports whether the connection's live subscription takes e.
func (c Connection) wants(e Event) bool {
	return e.Position > c.Sub.From && c.viewer().CanSee(e) && c.Sub.Filter.Match(e)
}

// Subscription states.
const (
	SubPending = "pending" // written by subscribe; waits for the appender to replay and turn it live
	SubLive    = "live"    // the appender sends it the events after From
)

// Subscription is what a connection subscribed to.
type Subscription struct {
	ID     string
	State  string // "", SubPending or SubLive
	Filter Filter
	// After is where a pending subscription's replay starts.
	After Position
	// From is the position a live subscription went live at.
	From Position
	// Acting are agents the subscriber acts for in this subscription (its agent filter,
	// when the agent's directory record declares the subscriber).
	Acting []string
}

// Poster sends frames to connections: API Gateway's @connections API.
type Poster interface {
	// Post sends data to a connection. Errors: ErrGone when the connection is closed.
	Post(ctx context.Context, id string, data []byte) error
	// Close closes a connection; its subscriber reconnects and resumes from its position.
	Close(ctx context.Context, id string) error
}

// ErrGone is the error of a post to a closed connection (API Gateway's 410).
var ErrGone = errors.New("the connection is gone")

// Agents finds directory records, to learn whom a subscriber acts for; *dynamo.Store is
// one.
type Agents interface {
	// Agent returns an agent's record. Errors: ENOTFOUND.
	Agent(ctx context.Context, did string) (federation.Agent, error)
}
