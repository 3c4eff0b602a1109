package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/routing"
)

// AWS list prices, us-east-1, on-demand, as of 2025 (DynamoDB's on-demand prices since
// their November 2024 cut; Lambda's arm64 first tier; HTTP API's first 300 million).
const (
	priceWRU       = 0.625 / 1e6  // a DynamoDB write request unit: 1 KB written, 2 in a transaction
	priceRRU       = 0.125 / 1e6  // a DynamoDB read request unit: 4 KB read strongly consistent, half eventually
	priceHTTPAPI   = 1.00 / 1e6   // an API Gateway HTTP API request of up to 512 KB
	priceLambdaReq = 0.20 / 1e6   // a Lambda invocation
	priceGBSecond  = 0.0000133334 // a GB-second of an arm64 Lambda
	// maxCostPerMillion is the goal: 1 million routed messages for at most this, in dollars.
	maxCostPerMillion = 3.30
	// costMessages are routed one at a time for the cost figures.
	costMessages = 20
)

// costResults is what the cost run measured.
type costResults struct {
	Messages []messageCost // in order: the first found the instance's cache empty
	MemoryMB int           // RouteFunction's MemorySize in template.yaml
	// Billed is the mean billed duration (each invocation rounded up to the millisecond)
	// of the latency run's in-process routed messages.
	Billed time.Duration
}

// messageCost is what one routed message asked of the table.
type messageCost struct {
	Calls []tableCall
}

// tableCall is one DynamoDB request and the items it touched.
type tableCall struct {
	Op    string
	After bool // made after the delivery began
	Items []itemUse
}

// itemUse is one item a request wrote, checked or read, and its size.
type itemUse struct {
	Kind       string // put, update, delete, check, read
	Tx         bool   // in a transaction
	Consistent bool   // a strongly consistent read
	Key        map[string]types.AttributeValue
	Item       map[string]types.AttributeValue // what a put writes
	Size       int                             // bytes, by DynamoDB's rules
}

// units is what the item costs: write request units for a write or a condition check
// (1 per KB or part of it, billed at the larger of the item's sizes before and after),
// read request units for a read (1 per 4 KB strongly consistent, half that eventually
// consistent); twice that in a transaction.
func (u itemUse) units() (wru, rru float64) {
	tx := 1.0
	if u.Tx {
		tx = 2
	}
	if u.Kind == "read" {
		r := float64(max(1, ceilDiv(u.Size, 4096)))
		if !u.Consistent {
			r /= 2
		}
		return 0, r * tx
	}
	return float64(max(1, ceilDiv(u.Size, 1024))) * tx, 0
}

// component names what an item is for, from its key and what was done to it.
func (u itemUse) component() string {
	pk := ""
	if v, ok := u.Key["PK"].(*types.AttributeValueMemberS); ok {
		pk = v.Value
	}
	switch {
	case strings.HasPrefix(pk, "JTI#"):
		return "jti claim"
	case strings.HasPrefix(pk, "MSG#") && u.Kind == "put":
		return "message claim"
	case strings.HasPrefix(pk, "MSG#"):
		return "delivery record"
	case strings.HasPrefix(pk, "RATE#agent#"):
		return "sender's counter"
	case strings.HasPrefix(pk, "RATE#global#"):
		return "global counter shard"
	case strings.HasPrefix(pk, "AGENT#") && u.Kind == "check":
		return "sender's record, asserted"
	case strings.HasPrefix(pk, "AGENT#"):
		return "parties' records, read"
	case strings.HasPrefix(pk, "LEDGER#"):
		return "ledger entry"
	}
	return pk
}

// recorder keeps the DynamoDB requests a client makes, item by item, and whether they
// came before or after the delivery began.
type recorder struct {
	after atomic.Bool
	mu    sync.Mutex
	calls []tableCall
}

// wrap returns a copy of client that records its requests in r.
func (r *recorder) wrap(client *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordItems",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					call := tableCall{Op: middleware.GetOperationName(ctx), After: r.after.Load(), Items: itemsOf(in.Parameters)}
					r.mu.Lock()
					r.calls = append(r.calls, call)
					r.mu.Unlock()
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})
}

// begin starts a message: what comes next is before its delivery.
func (r *recorder) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
	r.after.Store(false)
}

// take returns the message's requests.
func (r *recorder) take() []tableCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := r.calls
	r.calls = nil
	return calls
}

// itemsOf lists the items of a DynamoDB request.
func itemsOf(params any) []itemUse {
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		return []itemUse{{Kind: "put", Key: keyOf(in.Item), Item: in.Item}}
	case *dynamodb.UpdateItemInput:
		return []itemUse{{Kind: "update", Key: in.Key}}
	case *dynamodb.DeleteItemInput:
		return []itemUse{{Kind: "delete", Key: in.Key}}
	case *dynamodb.GetItemInput:
		return []itemUse{{Kind: "read", Key: in.Key, Consistent: aws.ToBool(in.ConsistentRead)}}
	case *dynamodb.BatchGetItemInput:
		var items []itemUse
		for _, ka := range in.RequestItems {
			for _, k := range ka.Keys {
				items = append(items, itemUse{Kind: "read", Key: k, Consistent: aws.ToBool(ka.ConsistentRead)})
			}
		}
		return items
	case *dynamodb.TransactWriteItemsInput:
		var items []itemUse
		for _, t := range in.TransactItems {
			switch {
			case t.Put != nil:
				items = append(items, itemUse{Kind: "put", Tx: true, Key: keyOf(t.Put.Item), Item: t.Put.Item})
			case t.Update != nil:
				items = append(items, itemUse{Kind: "update", Tx: true, Key: t.Update.Key})
			case t.ConditionCheck != nil:
				items = append(items, itemUse{Kind: "check", Tx: true, Key: t.ConditionCheck.Key})
			case t.Delete != nil:
				items = append(items, itemUse{Kind: "delete", Tx: true, Key: t.Delete.Key})
			}
		}
		return items
	}
	return nil
}

func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": item["PK"], "SK": item["SK"]}
}

// phaseDeliverer tells the recorder when a delivery begins.
type phaseDeliverer struct {
	d   routing.Deliverer
	rec *recorder
}

func (p phaseDeliverer) Deliver(ctx context.Context, endpoint string, m routing.Message) (json.RawMessage, error) {
	p.rec.after.Store(true)
	return p.d.Deliver(ctx, endpoint, m)
}

// cost routes costMessages messages one at a time through a Router of its own, built as
// functions/route builds it, whose cache starts empty as a new function instance's does,
// over a client that records every request; after each message it reads back what the
// requests updated, checked or read, to size them as they were billed.
func (b *routingBench) cost(ctx context.Context) error {
	progress("routing: cost, %d messages one at a time, sizing every item", costMessages)
	table := b.stack.Template.Tables[0].Name
	rec := &recorder{}
	plain := dynamo.NewClient(devstack.LocalAWSConfig(b.stack.EndpointURL), true)
	store := dynamo.NewStore(rec.wrap(plain), table)
	verifier, err := identity.NewVerifier(identity.Options{Audience: b.audience, Replay: store.ReplayGuard()})
	if err != nil {
		return err
	}
	router, err := routing.New(verifier, store, phaseDeliverer{d: b.deliver.d, rec: rec}, routing.Options{
		AgentRate: raisedRate, GlobalRate: raisedRate, Caveat: identity.Caveat,
	}, logs.New(io.Discard, "error"))
	if err != nil {
		return err
	}
	calls, err := b.calls(costMessages)
	if err != nil {
		return err
	}
	for _, c := range calls {
		rec.begin()
		res, err := router.Route(ctx, c.req, federation.Credential{Type: "jwt", Token: c.token})
		if err == nil {
			err = checkRouted(res, c.id)
		}
		if err != nil {
			return fmt.Errorf("cost run: %w", err)
		}
		m := messageCost{Calls: rec.take()}
		if err := sizeItems(ctx, plain, table, m.Calls); err != nil {
			return err
		}
		b.results.Cost.Messages = append(b.results.Cost.Messages, m)
	}
	for _, fn := range b.stack.Template.Functions {
		if fn.LogicalID == "RouteFunction" {
			b.results.Cost.MemoryMB = fn.MemoryMB
		}
	}
	return nil
}

// sizeItems sets the size of every item of calls: a put's from what it wrote, the others'
// from the item as it is now (after an update: the larger of its two sizes, as the
// updates of a routed message only add to an item).
func sizeItems(ctx context.Context, db *dynamodb.Client, table string, calls []tableCall) error {
	for i := range calls {
		for j := range calls[i].Items {
			u := &calls[i].Items[j]
			if u.Item != nil {
				u.Size = itemSize(u.Item)
				continue
			}
			out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: u.Key, ConsistentRead: aws.Bool(true)})
			if err != nil {
				return fmt.Errorf("size an item: %w", err)
			}
			u.Size = itemSize(out.Item)
		}
	}
	return nil
}

// itemSize is the size of an item by DynamoDB's rules (Developer Guide, "DynamoDB item
// sizes and formats"): the UTF-8 length of each attribute's name plus its value's size.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

// valueSize is the size of one value: a string's UTF-8 bytes, a binary's raw bytes, a
// number's one byte per two significant digits plus one, a Boolean or null one byte, a
// set its elements, a list or map 3 bytes plus its elements, one byte more each (and a
// map's keys).
func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// numberSize is one byte per two significant digits (leading and trailing zeros and
// the exponent do not count), plus one.
func numberSize(s string) int {
	mantissa, _, _ := strings.Cut(strings.ToLower(strings.TrimLeft(s, "+-")), "e")
	digits := strings.Trim(strings.Replace(mantissa, ".", "", 1), "0")
	return (max(1, len(digits))+1)/2 + 1
}
