package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/routing"
)

// Items of routing (docs/architecture.md, "The table"):
//
//	MSG#<sender>#<id>           DELIVERY  the sender's message ID: its claim and delivery record, TTL 1 day
//	RATE#agent#<did>#<minute>   COUNT     messages of a sender in a minute, TTL 1 hour
//	RATE#global#<minute>        COUNT     messages of everyone in a minute
//	LEDGER#<sender>#<id>        0001      the routing fee of a delivery, append-only
//
// <sender> is senderScope of the sender's DID: message IDs are the sender's own, so one
// agent's ID never collides with (or squats) another's.
const (
	msgPrefix    = "MSG#"
	skDelivery   = "DELIVERY"
	ratePrefix   = "RATE#"
	skCount      = "COUNT"
	ledgerPrefix = "LEDGER#"
	deliveryTTL  = 24 * time.Hour
)

var _ routing.Store = (*Store)(nil)

// messageKey is the key part of a sender's message ID: a hash of the sender's DID (DIDs
// are long, and their characters are the caller's choice) and the ID, which never holds
// '#' (routing refuses it).
func messageKey(from, id string) string {
	sum := sha256.Sum256([]byte(from))
	return hex.EncodeToString(sum[:16]) + "#" + id
}

// Admit implements routing.Store with one transaction of three conditional writes. A
// failed delivery's claim may be taken again.
func (s *Store) Admit(ctx context.Context, a routing.Admission) (routing.Claim, error) {
	minute := a.Minute.UTC().Format("200601021504")
	expires := nv(a.Minute.Add(time.Hour).Unix())
	claim := key(msgPrefix+messageKey(a.From, a.MessageID), skDelivery)
	claim["content_hash"], claim["from"], claim["to"] = sv(a.ContentHash), sv(a.From), sv(a.To)
	claim["status"], claim["claimed_at"] = sv(routing.ClaimPending), sv(time.Now().UTC().Format(time.RFC3339Nano))
	claim["expires_at"] = nv(time.Now().Add(deliveryTTL).Unix())
	counter := func(pk string, limit int) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName:           aws.String(s.table),
			Key:                 key(pk, skCount),
			UpdateExpression:    aws.String("ADD n :n SET expires_at = :e"),
			ConditionExpression: aws.String("attribute_not_exists(n) OR n <= :max"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":n": nv(int64(a.N)), ":e": expires, ":max": nv(int64(limit - a.N)),
			},
		}}
	}
	if a.N > a.AgentLimit || a.N > a.GlobalLimit {
		return routing.Claim{}, federation.Errorf(federation.ERATELIMITED, "%d messages are more than a minute's limit", a.N)
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName: aws.String(s.table), Item: claim,
			ConditionExpression:       aws.String("attribute_not_exists(PK) OR (#status = :failed AND content_hash = :h)"),
			ExpressionAttributeNames:  map[string]string{"#status": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":failed": sv(routing.ClaimFailed), ":h": sv(a.ContentHash)},
		}},
		counter(ratePrefix+"agent#"+a.From+"#"+minute, a.AgentLimit),
		counter(ratePrefix+"global#"+minute, a.GlobalLimit),
	}})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		// The reasons come in the order of the items. AWS says "None" for an item that
		// did not fail; the local emulator says "".
		failed := func(i int) bool {
			return i < len(canceled.CancellationReasons) && aws.ToString(canceled.CancellationReasons[i].Code) == "ConditionalCheckFailed"
		}
		switch {
		case failed(0):
			return routing.Claim{}, federation.Errorf(federation.ECONFLICT, "message %s is claimed", a.MessageID)
		case failed(1):
			return routing.Claim{}, federation.Errorf(federation.ERATELIMITED, "%s reached its limit of %d messages a minute", a.From, a.AgentLimit)
		case failed(2):
			return routing.Claim{}, federation.Errorf(federation.ERATELIMITED, "the gateway reached its limit of %d messages a minute", a.GlobalLimit)
		}
	}
	if err != nil {
		return routing.Claim{}, fmt.Errorf("admit %s: %w", a.MessageID, translate(err))
	}
	return routing.Claim{MessageID: a.MessageID, ContentHash: a.ContentHash, From: a.From, To: a.To, Status: routing.ClaimPending}, nil
}

// Claim implements routing.Store.
func (s *Store) Claim(ctx context.Context, from, id string) (routing.Claim, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(msgPrefix+messageKey(from, id), skDelivery), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return routing.Claim{}, fmt.Errorf("claim %s: %w", id, translate(err))
	}
	if out.Item == nil {
		return routing.Claim{}, federation.Errorf(federation.ENOTFOUND, "no message %s", id)
	}
	it := out.Item
	return routing.Claim{
		MessageID: id, ContentHash: str(it, "content_hash"), From: str(it, "from"), To: str(it, "to"), Status: str(it, "status"),
		TargetRegistry: str(it, "target_registry"), Response: []byte(str(it, "response")), Reason: str(it, "reason"), Fee: str(it, "fee"),
	}, nil
}

// Complete implements routing.Store: the claim's outcome and, for a delivery, the ledger
// entry of its fee, in one transaction.
func (s *Store) Complete(ctx context.Context, c routing.Claim) error {
	set := "SET #status = :s, target_registry = :t, completed_at = :at"
	vals := map[string]types.AttributeValue{
		":s": sv(c.Status), ":t": sv(c.TargetRegistry), ":at": sv(time.Now().UTC().Format(time.RFC3339Nano)), ":pending": sv(routing.ClaimPending),
	}
	if c.Reason != "" {
		set += ", reason = :r"
		vals[":r"] = sv(c.Reason)
	}
	if len(c.Response) > 0 {
		set += ", response = :resp"
		vals[":resp"] = sv(string(c.Response))
	}
	if c.Fee != "" {
		set += ", fee = :fee"
		vals[":fee"] = sv(c.Fee)
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(s.table), Key: key(msgPrefix+messageKey(c.From, c.MessageID), skDelivery),
		UpdateExpression: aws.String(set), ConditionExpression: aws.String("#status = :pending"),
		ExpressionAttributeNames: map[string]string{"#status": "status"}, ExpressionAttributeValues: vals,
	}}}
	if c.Status == routing.ClaimDelivered && c.Fee != "" {
		entry := key(ledgerPrefix+messageKey(c.From, c.MessageID), "0001")
		entry["kind"], entry["account"], entry["amount"] = sv("routing_fee"), sv(c.From), sv(c.Fee)
		entry["message_id"], entry["at"] = sv(c.MessageID), sv(time.Now().UTC().Format(time.RFC3339Nano))
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: entry, ConditionExpression: aws.String("attribute_not_exists(PK)"),
		}})
	}
	if _, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return fmt.Errorf("complete %s: %w", c.MessageID, translate(err))
	}
	return nil
}

// LedgerEntry is one entry of the ledger.
type LedgerEntry struct {
	Kind, Account, Amount, MessageID string
}

// Ledger returns the entries of the ledger of a sender's message (for tests and
// operators).
func (s *Store) Ledger(ctx context.Context, from, messageID string) ([]LedgerEntry, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(ledgerPrefix + messageKey(from, messageID))},
	})
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", messageID, translate(err))
	}
	var entries []LedgerEntry
	for _, it := range out.Items {
		entries = append(entries, LedgerEntry{Kind: str(it, "kind"), Account: str(it, "account"), Amount: str(it, "amount"), MessageID: str(it, "message_id")})
	}
	return entries, nil
}
