package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/routing"
	"github.com/federation-gateway/gateway/shared/wait"
)

// Items of routing (docs/architecture.md, "The table" and "Hot keys and scaling limits"):
//
//	MSG#<sender>#<id>                   DELIVERY  the sender's message ID: its claim and delivery record, TTL 1 day
//	RATE#agent#<did>#<minute>           COUNT     messages of a sender in a minute, TTL 1 hour
//	RATE#global#<minute>#<shard>        COUNT     one shard of the messages of everyone in a minute, TTL 1 hour
//	LEDGER#<sender>#<id>                0001      the routing fee of a delivery, append-only
//	JTI#<sha256 of the key>             JTI       a credential's jti, claimed by the admission (identity.go)
//	AGENT#<did>                         ROUTE     the sender's record, which the admission checks, not writes
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
	// maxConflictRetries bounds the retries of an admission that collided with another
	// transaction on one of its items (a counter, mostly): past it the item is too hot.
	maxConflictRetries = 3
)

var _ routing.Store = (*Store)(nil)

// messageKey is the key part of a sender's message ID: a hash of the sender's DID (DIDs
// are long, and their characters are the caller's choice) and the ID, which never holds
// '#' (routing refuses it).
func messageKey(from, id string) string {
	sum := sha256.Sum256([]byte(from))
	return hex.EncodeToString(sum[:16]) + "#" + id
}

// admission is the transaction of an admission: its items, and the cause each one's
// failed condition means.
type admission struct {
	items  []types.TransactWriteItem
	causes []error
}

// Admit implements routing.Store with one transaction: the jti's claim, a condition on
// the sender's record, the message's claim and the two counters, in that order, which is
// also the precedence of their failures.
func (s *Store) Admit(ctx context.Context, a routing.Admission) (routing.Claim, error) {
	if a.N > a.AgentLimit || a.N > a.GlobalShardLimit {
		return routing.Claim{}, federation.Wrap(federation.ERATELIMITED, routing.ErrShardFull, fmt.Sprintf("%d messages are more than a minute's limit", a.N))
	}
	tx := s.admission(a, time.Now())
	for attempt := 0; ; attempt++ {
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx.items})
		if err == nil {
			return routing.Claim{MessageID: a.MessageID, ContentHash: a.ContentHash, From: a.From, To: a.To, Status: routing.ClaimPending}, nil
		}
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			return routing.Claim{}, fmt.Errorf("admit %s: %w", a.MessageID, translate(err))
		}
		// The reasons come in the order of the items. AWS says "None" for an item that
		// did not fail; the local emulator says "".
		conflict := false
		for i, r := range canceled.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				if i < len(tx.causes) {
					return routing.Claim{}, admissionError(tx.causes[i], a)
				}
			case "TransactionConflict":
				conflict = true
			}
		}
		if !conflict || attempt == maxConflictRetries {
			return routing.Claim{}, federation.Wrap(federation.EUNAVAILABLE, err, "the gateway is busy; try again")
		}
		if err := wait.Sleep(ctx, time.Duration(5<<attempt+rand.IntN(10))*time.Millisecond); err != nil {
			return routing.Claim{}, err
		}
	}
}

// admission builds the transaction of a.
func (s *Store) admission(a routing.Admission, now time.Time) admission {
	var tx admission
	add := func(item types.TransactWriteItem, cause error) {
		tx.items, tx.causes = append(tx.items, item), append(tx.causes, cause)
	}
	if a.Replay.Key != "" {
		add(types.TransactWriteItem{Put: s.replayPut(a.Replay.Key, a.Replay.Until, now)}, routing.ErrReplayed)
	}
	if a.Sender.Registry != "" {
		cond := "#status = :active AND registry = :registry"
		vals := map[string]types.AttributeValue{":active": sv(federation.StatusActive), ":registry": sv(a.Sender.Registry)}
		if a.Sender.Identity != "" {
			cond += " AND contains(identities, :identity)"
			vals[":identity"] = sv(a.Sender.Identity)
		}
		add(types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.table), Key: key(agentPrefix+a.From, skRoute), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: map[string]string{"#status": "status"}, ExpressionAttributeValues: vals,
		}}, routing.ErrSenderChanged)
	}
	claim := key(msgPrefix+messageKey(a.From, a.MessageID), skDelivery)
	claim["content_hash"], claim["from"], claim["to"] = sv(a.ContentHash), sv(a.From), sv(a.To)
	claim["status"], claim["claimed_at"] = sv(routing.ClaimPending), sv(now.UTC().Format(time.RFC3339Nano))
	claim["expires_at"] = nv(now.Add(deliveryTTL).Unix())
	add(types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.table), Item: claim,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR (#status = :failed AND content_hash = :h)"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":failed": sv(routing.ClaimFailed), ":h": sv(a.ContentHash)},
	}}, routing.ErrClaimed)

	minute := a.Minute.UTC().Format("200601021504")
	expires := nv(a.Minute.Add(time.Hour).Unix())
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
	add(counter(ratePrefix+"agent#"+a.From+"#"+minute, a.AgentLimit), routing.ErrAgentLimit)
	add(counter(ratePrefix+"global#"+minute+"#"+strconv.Itoa(a.GlobalShard), a.GlobalShardLimit), routing.ErrShardFull)
	return tx
}

// admissionError is the domain error of an admission whose item of cause failed its
// condition.
func admissionError(cause error, a routing.Admission) error {
	switch cause {
	case routing.ErrReplayed:
		return federation.Wrap(federation.EUNAUTHORIZED, cause, "replayed jti")
	case routing.ErrSenderChanged:
		return federation.Wrap(federation.EFORBIDDEN, cause, fmt.Sprintf("%s is no longer an active agent of registry %s", a.From, a.Sender.Registry))
	case routing.ErrClaimed:
		return federation.Wrap(federation.ECONFLICT, cause, fmt.Sprintf("message %s is claimed", a.MessageID))
	case routing.ErrAgentLimit:
		return federation.Wrap(federation.ERATELIMITED, cause, fmt.Sprintf("%s reached its limit of %d messages a minute", a.From, a.AgentLimit))
	default:
		return federation.Wrap(federation.ERATELIMITED, cause, "the shard of the global limit is full")
	}
}

// ClaimReplay implements routing.Store with the conditional put of ReplayGuard.Claim.
func (s *Store) ClaimReplay(ctx context.Context, r identity.Replay) error {
	if _, err := s.db.PutItem(ctx, putItem(s.replayPut(r.Key, r.Until, time.Now()))); err != nil {
		if err = translate(err); federation.ErrorCode(err) == federation.ECONFLICT {
			return federation.Wrap(federation.EUNAUTHORIZED, routing.ErrReplayed, "replayed jti")
		}
		return fmt.Errorf("claim jti: %w", err)
	}
	return nil
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
	names := map[string]string{"#status": "status"}
	if len(c.Response) > 0 {
		// RESPONSE is one of DynamoDB's reserved words: it needs an alias (kumo does not
		// check, moto does: see TestEngine).
		set += ", #response = :resp"
		names["#response"] = "response"
		vals[":resp"] = sv(string(c.Response))
	}
	if c.Fee != "" {
		set += ", fee = :fee"
		vals[":fee"] = sv(c.Fee)
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(s.table), Key: key(msgPrefix+messageKey(c.From, c.MessageID), skDelivery),
		UpdateExpression: aws.String(set), ConditionExpression: aws.String("#status = :pending"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
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
