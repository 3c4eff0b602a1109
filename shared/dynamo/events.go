package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Items of the event stream:
//
//	EVENTS      <position>  an event of the log, at its position (16 digits), TTL: the retention
//	EVENTS      HEAD        the log's head: n, the last position taken; sent, the last sent
//	EVENT#<id>  LOGGED      the event ID's claim: the log holds it (at position), same TTL
//	CONN        <id>        a WebSocket connection: its verified viewer and subscription, TTL 2 h
//
// The log is one partition, so one Query reads it in order; the head is in it and sorts
// after every position. The connections are one partition too, so that sending an event
// reads every subscription with one Query: the table's stream reports a subscription
// (PK CONN, sub_state pending) to the events function, which serves it.
const (
	pkEvents      = "EVENTS"
	skHead        = "HEAD"
	eventIDPrefix = "EVENT#"
	skLogged      = "LOGGED"
	pkConn        = "CONN"
)

// EventLog is the table's event log, an events.Log.
type EventLog struct {
	s         *Store
	retention time.Duration
	now       func() time.Time
}

var (
	_ events.Log         = EventLog{}
	_ events.Connections = (*Store)(nil)
)

// EventLog returns the table's event log, whose events expire after retention.
func (s *Store) EventLog(retention time.Duration) EventLog {
	if retention <= 0 {
		retention = events.DefaultRetention
	}
	return EventLog{s: s, retention: retention, now: time.Now}
}

// Head implements events.Log.
func (l EventLog) Head(ctx context.Context) (events.Head, error) {
	s := l.s
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pkEvents, skHead), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return events.Head{}, fmt.Errorf("read the event log's head: %w", translate(err))
	}
	return events.Head{N: events.Position(uinteger(out.Item, "n")), Sent: events.Position(uinteger(out.Item, "sent"))}, nil
}

// Append implements events.Log with one transaction: the head moves from head to the last
// position only if it is still head, and each event's ID is claimed with a conditional
// put beside its log entry. When claims fail the transaction is tried again without their
// events, whose positions are then not taken: the positions stay dense.
func (l EventLog) Append(ctx context.Context, head events.Position, evs []events.Event) ([]events.Event, []string, error) {
	if len(evs) > events.MaxAppend {
		return nil, nil, fmt.Errorf("append %d events: at most %d at once", len(evs), events.MaxAppend)
	}
	s := l.s
	pending := append([]events.Event(nil), evs...)
	var dup []string
	for len(pending) > 0 {
		expires := nv(l.now().Add(l.retention).Unix())
		next := head + events.Position(len(pending))
		items := []types.TransactWriteItem{{Update: &types.Update{
			TableName: aws.String(s.table), Key: key(pkEvents, skHead),
			UpdateExpression:    aws.String("SET n = :next, sent = if_not_exists(sent, :zero)"),
			ConditionExpression: aws.String("attribute_not_exists(n) OR n = :head"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":next": nv(int64(next)), ":head": nv(int64(head)), ":zero": nv(0),
			},
		}}}
		for i := range pending {
			pending[i].Position = head + events.Position(i+1)
			e := pending[i]
			claim := key(eventIDPrefix+e.ID, skLogged)
			claim["position"], claim["expires_at"] = sv(e.Position.String()), expires
			entry, err := logEntry(e)
			if err != nil {
				return nil, dup, err
			}
			entry["expires_at"] = expires
			items = append(items,
				types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: claim, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
				types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: entry}},
			)
		}
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return pending, dup, nil
		}
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			return nil, dup, fmt.Errorf("append to the event log: %w", translate(err))
		}
		failed := func(i int) bool {
			return i < len(canceled.CancellationReasons) && aws.ToString(canceled.CancellationReasons[i].Code) == "ConditionalCheckFailed"
		}
		if failed(0) {
			return nil, dup, federation.Errorf(federation.ECONFLICT, "the event log's head is no longer %s", head)
		}
		var rest []events.Event
		for i, e := range pending {
			if failed(1 + 2*i) {
				dup = append(dup, e.ID)
			} else {
				rest = append(rest, e)
			}
		}
		if len(rest) == len(pending) {
			return nil, dup, fmt.Errorf("append to the event log: %w", translate(err))
		}
		pending = rest
	}
	return nil, dup, nil
}

// logEntry is an event's log item.
func logEntry(e events.Event) (map[string]types.AttributeValue, error) {
	item := key(pkEvents, e.Position.String())
	item["id"], item["type"], item["subject"] = sv(e.ID), sv(e.Type), sv(e.Subject)
	item["time"] = sv(e.Time.UTC().Format(time.RFC3339Nano))
	item["data"] = sv(string(e.Data))
	if e.Registry != "" {
		item["registry"] = sv(e.Registry)
	}
	a := e.Audience
	item["parties"], item["agents"], item["registries"] = lv(a.Parties), lv(a.Agents), lv(a.Registries)
	if a.Transfer != "" {
		item["transfer"] = sv(a.Transfer)
	}
	if !json.Valid(e.Data) {
		return nil, fmt.Errorf("event %s: its data is not JSON", e.ID)
	}
	return item, nil
}

func eventFrom(it map[string]types.AttributeValue) events.Event {
	p, _ := events.ParsePosition(str(it, AttrSK))
	e := events.Event{
		ID: str(it, "id"), Type: str(it, "type"), Subject: str(it, "subject"), Registry: str(it, "registry"),
		Data: json.RawMessage(str(it, "data")), Position: p,
		Audience: events.Audience{Parties: list(it, "parties"), Agents: list(it, "agents"), Registries: list(it, "registries"), Transfer: str(it, "transfer")},
	}
	e.Time, _ = time.Parse(time.RFC3339Nano, str(it, "time"))
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	return e
}

// MarkSent implements events.Log.
func (l EventLog) MarkSent(ctx context.Context, p events.Position) error {
	_, err := l.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(l.s.table), Key: key(pkEvents, skHead),
		UpdateExpression:          aws.String("SET sent = :p"),
		ConditionExpression:       aws.String("attribute_exists(n) AND sent < :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": nv(int64(p))},
	})
	if err != nil && federation.ErrorCode(translate(err)) != federation.ECONFLICT {
		return fmt.Errorf("mark the event log sent up to %s: %w", p, translate(err))
	}
	return nil
}

// Read implements events.Log with a Query of the log's partition.
func (l EventLog) Read(ctx context.Context, after, upTo events.Position, limit int) ([]events.Event, error) {
	if upTo <= after || limit <= 0 {
		return nil, nil
	}
	var out []events.Event
	in := &dynamodb.QueryInput{
		TableName:              aws.String(l.s.table),
		KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :a AND :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": sv(pkEvents), ":a": sv((after + 1).String()), ":b": sv(upTo.String()),
		},
		ConsistentRead: aws.Bool(true),
		Limit:          aws.Int32(int32(min(limit, 1000))),
	}
	for len(out) < limit {
		page, err := l.s.db.Query(ctx, in)
		if err != nil {
			return out, fmt.Errorf("read the event log after %s: %w", after, translate(err))
		}
		for _, it := range page.Items {
			if len(out) < limit {
				out = append(out, eventFrom(it))
			}
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}

// Retained implements events.Log. TTL deletes an expired entry within days, not at once:
// an entry past its expiry counts as gone.
func (l EventLog) Retained(ctx context.Context, p events.Position) (bool, error) {
	out, err := l.s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(l.s.table), Key: key(pkEvents, p.String()),
		ProjectionExpression: aws.String("expires_at"),
	})
	if err != nil {
		return false, fmt.Errorf("read the event log at %s: %w", p, translate(err))
	}
	return out.Item != nil && int64(uinteger(out.Item, "expires_at")) > l.now().Unix(), nil
}

// PutConnection implements events.Connections.
func (s *Store) PutConnection(ctx context.Context, c events.Connection, expires time.Time) error {
	item := key(pkConn, c.ID)
	item["subject"] = sv(c.Viewer.Subject)
	item["operator"] = &types.AttributeValueMemberBOOL{Value: c.Viewer.Operator}
	item["acting"] = lv(c.Viewer.Acting)
	item["connected_at"] = sv(c.ConnectedAt.UTC().Format(time.RFC3339Nano))
	item["expires_at"] = nv(expires.Unix())
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("record connection %s: %w", c.ID, translate(err))
	}
	return nil
}

// Connection implements events.Connections.
func (s *Store) Connection(ctx context.Context, id string) (events.Connection, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pkConn, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return events.Connection{}, fmt.Errorf("read connection %s: %w", id, translate(err))
	}
	if out.Item == nil {
		return events.Connection{}, federation.Errorf(federation.ENOTFOUND, "no connection %s", id)
	}
	return connectionFrom(out.Item), nil
}

func connectionFrom(it map[string]types.AttributeValue) events.Connection {
	c := events.Connection{
		ID:     str(it, AttrSK),
		Viewer: events.Viewer{Subject: str(it, "subject"), Operator: boolean(it, "operator"), Acting: list(it, "acting")},
		Sub: events.Subscription{
			ID: str(it, "sub_id"), State: str(it, "sub_state"), Acting: list(it, "sub_acting"),
		},
	}
	c.ConnectedAt, _ = time.Parse(time.RFC3339Nano, str(it, "connected_at"))
	_ = json.Unmarshal([]byte(str(it, "sub_filter")), &c.Sub.Filter)
	c.Sub.After, _ = events.ParsePosition(str(it, "sub_after"))
	c.Sub.From, _ = events.ParsePosition(str(it, "sub_from"))
	return c
}

// DeleteConnection implements events.Connections.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	return s.delete(ctx, key(pkConn, id))
}

// Subscribe implements events.Connections.
func (s *Store) Subscribe(ctx context.Context, id string, sub events.Subscription) error {
	filter, err := json.Marshal(sub.Filter)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", id, err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(pkConn, id),
		UpdateExpression:          aws.String("SET sub_id = :id, sub_state = :pending, sub_filter = :f, sub_after = :a, sub_acting = :acting REMOVE sub_from"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": sv(sub.ID), ":pending": sv(events.SubPending), ":f": sv(string(filter)), ":a": sv(sub.After.String()), ":acting": lv(sub.Acting)},
	})
	if err != nil {
		err = translate(err)
		if federation.ErrorCode(err) == federation.ECONFLICT {
			return federation.Errorf(federation.ENOTFOUND, "no connection %s", id)
		}
		return fmt.Errorf("subscribe %s: %w", id, err)
	}
	return nil
}

// Unsubscribe implements events.Connections.
func (s *Store) Unsubscribe(ctx context.Context, id string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(pkConn, id),
		UpdateExpression:    aws.String("REMOVE sub_id, sub_state, sub_filter, sub_after, sub_from, sub_acting"),
		ConditionExpression: aws.String("attribute_exists(PK)"),
	})
	if err != nil && federation.ErrorCode(translate(err)) != federation.ECONFLICT {
		return fmt.Errorf("unsubscribe %s: %w", id, translate(err))
	}
	return nil
}

// Live implements events.Connections with one Query of the connections' partition.
func (s *Store) Live(ctx context.Context) ([]events.Connection, error) {
	var out []events.Connection
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("PK = :pk"),
		FilterExpression:          aws.String("sub_state = :live"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(pkConn), ":live": sv(events.SubLive)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the live subscriptions: %w", translate(err))
		}
		for _, it := range page.Items {
			out = append(out, connectionFrom(it))
		}
	}
	return out, nil
}

// GoLive implements events.Connections.
func (s *Store) GoLive(ctx context.Context, id, subscription string, from events.Position) error {
	return s.updatePending(ctx, id, subscription, "SET sub_state = :live, sub_from = :p", map[string]types.AttributeValue{
		":live": sv(events.SubLive), ":p": sv(from.String()),
	})
}

// ContinueReplay implements events.Connections.
func (s *Store) ContinueReplay(ctx context.Context, id, subscription string, after events.Position) error {
	return s.updatePending(ctx, id, subscription, "SET sub_after = :p", map[string]types.AttributeValue{":p": sv(after.String())})
}

func (s *Store) updatePending(ctx context.Context, id, subscription, update string, vals map[string]types.AttributeValue) error {
	vals[":sub"], vals[":pending"] = sv(subscription), sv(events.SubPending)
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(pkConn, id),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("sub_id = :sub AND sub_state = :pending"),
		ExpressionAttributeValues: vals,
	})
	if err != nil {
		return fmt.Errorf("subscription %s of %s: %w", subscription, id, translate(err))
	}
	return nil
}

func uinteger(item map[string]types.AttributeValue, name string) uint64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseUint(v.Value, 10, 64)
		return n
	}
	return 0
}

// Counted returns a copy of client that adds each operation it makes to calls: the
// events function logs its calls per batch (which the benchmark reads).
func Counted(client *dynamodb.Client, calls *atomic.Int64) *dynamodb.Client {
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					calls.Add(1)
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})
}
