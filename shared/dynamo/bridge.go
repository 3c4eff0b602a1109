package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/wait"
)

// Items of the bridge. Money is a decimal string everywhere; every item that holds money
// carries a version and is written only on the condition that it still has the version
// it was read with.
//
//	BRIDGE#<transfer>          STATE   a transfer: status, step, amounts, steps, execution
//	                                   GSI1 BRIDGE#inflight#<lane> while in flight,
//	                                   BRIDGE#manual_review while parked, none once final
//	BRIDGEKEY#<sender>#<key>   KEY     an Idempotency-Key and the transfer it made, TTL 7 days
//	DEPOSIT#<registry>#<tx>    CLAIM   the claim of a deposit by its transfer
//	LANE#<from>-><to>          STATE   a lane: paused, bucket, limits an operator set
//	BOOK#<registry>            STATE   the gateway's books on a registry (bridge.Book)
//	LEDGER#<transfer or op-id> <seq>   a movement of value, append-only
//	AUDIT#<request id>         ENTRY   an operator action, append-only; GSI1 AUDIT / <at>
//	RECON#<registry>           LATEST  the latest reconciliation of a registry
//
// For the table's stream (events): a transfer's "status" and "step" attributes, a lane's
// "paused" and a book's "low_liquidity" are plain top-level attributes.
const (
	transferPrefix = "BRIDGE#"
	skState        = "STATE"
	keyPrefix      = "BRIDGEKEY#"
	skKey          = "KEY"
	depositPrefix  = "DEPOSIT#"
	skClaim        = "CLAIM"
	lanePrefix     = "LANE#"
	bookPrefix     = "BOOK#"
	auditPrefix    = "AUDIT#"
	skEntry        = "ENTRY"
	auditIndexPK   = "AUDIT"
	reconPrefix    = "RECON#"
	skLatest       = "LATEST"
	inflightPrefix = "BRIDGE#inflight#"
	parkedIndexPK  = "BRIDGE#manual_review"
	keyTTL         = 7 * 24 * time.Hour
)

var _ bridge.Store = (*Store)(nil)

func dv(d decimal.Decimal) types.AttributeValue { return sv(d.String()) }

func dec(it map[string]types.AttributeValue, name string) decimal.Decimal {
	d, err := decimal.NewFromString(str(it, name))
	if err != nil {
		return decimal.Zero
	}
	return d
}

func tv(t time.Time) types.AttributeValue { return sv(t.UTC().Format(time.RFC3339Nano)) }

func tm(it map[string]types.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, str(it, name))
	return t
}

func version(it map[string]types.AttributeValue) int64 {
	n, _ := strconv.ParseInt(numStr(it, "version"), 10, 64)
	return n
}

func numStr(it map[string]types.AttributeValue, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// versioned is the condition of a write of an item read at version v: still at v, or
// still absent when it was never written.
func versioned(v int64) (*string, map[string]types.AttributeValue) {
	if v == 0 {
		return aws.String("attribute_not_exists(PK)"), nil
	}
	return aws.String("version = :v"), map[string]types.AttributeValue{":v": nv(v)}
}

func (s *Store) put(item map[string]types.AttributeValue, cond *string, vals map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: item, ConditionExpression: cond, ExpressionAttributeValues: vals}}
}

func transferItem(t bridge.Transfer) map[string]types.AttributeValue {
	steps, _ := json.Marshal(t.Steps)
	it := key(transferPrefix+t.ID, skState)
	for k, v := range map[string]string{
		"transfer_id": t.ID, "status": t.Status, "step": t.Step, "from": t.From, "to": t.To, "lane": t.Lane.String(),
		"source_registry": t.Lane.From, "target_registry": t.Lane.To, "sender": t.Sender,
		"deposit_registry": t.Deposit.Registry, "deposit_tx": t.Deposit.TransactionID,
		"sender_account": t.SenderAccount, "receiver_account": t.ReceiverAccount, "idempotency_key": t.IdempotencyKey,
		"request_hash": t.RequestHash, "deposit_sender": t.DepositSender, "mint_tx": t.MintTx, "refund_tx": t.RefundTx,
		"reason": t.Reason, "parked_from": t.ParkedFrom, "execution_arn": t.ExecutionARN, "steps": string(steps),
	} {
		if v != "" {
			it[k] = sv(v)
		}
	}
	for k, v := range map[string]decimal.Decimal{"amount": t.Amount, "fee_rate": t.FeeRate, "deposited": t.Deposited,
		"fee": t.Fee, "minted": t.Minted, "refunded": t.Refunded, "reserved": t.Reserved} {
		it[k] = dv(v)
	}
	for k, v := range map[string]time.Time{"created_at": t.CreatedAt, "updated_at": t.UpdatedAt, "mint_sent_at": t.MintSentAt, "refund_sent_at": t.RefundSentAt} {
		if !v.IsZero() {
			it[k] = tv(v)
		}
	}
	it["attempt"] = nv(int64(t.Attempt))
	it["version"] = nv(t.Version + 1)
	switch {
	case t.Status == bridge.StatusManualReview:
		it["GSI1PK"], it["GSI1SK"] = sv(parkedIndexPK), sv(t.UpdatedAt.UTC().Format(time.RFC3339Nano)+"#"+t.ID)
	case !bridge.Final(t.Status):
		it["GSI1PK"], it["GSI1SK"] = sv(inflightPrefix+t.Lane.String()), sv(t.CreatedAt.UTC().Format(time.RFC3339Nano)+"#"+t.ID)
	}
	return it
}

func transferFrom(it map[string]types.AttributeValue) bridge.Transfer {
	t := bridge.Transfer{
		ID: str(it, "transfer_id"), Status: str(it, "status"), Step: str(it, "step"), From: str(it, "from"), To: str(it, "to"),
		Lane: bridge.LaneID{From: str(it, "source_registry"), To: str(it, "target_registry")}, Sender: str(it, "sender"),
		Deposit:       bridge.Deposit{Registry: str(it, "deposit_registry"), TransactionID: str(it, "deposit_tx")},
		SenderAccount: str(it, "sender_account"), ReceiverAccount: str(it, "receiver_account"),
		IdempotencyKey: str(it, "idempotency_key"), RequestHash: str(it, "request_hash"), DepositSender: str(it, "deposit_sender"),
		MintTx: str(it, "mint_tx"), RefundTx: str(it, "refund_tx"), Reason: str(it, "reason"), ParkedFrom: str(it, "parked_from"),
		ExecutionARN: str(it, "execution_arn"),
		Amount:       dec(it, "amount"), FeeRate: dec(it, "fee_rate"), Deposited: dec(it, "deposited"), Fee: dec(it, "fee"),
		Minted: dec(it, "minted"), Refunded: dec(it, "refunded"), Reserved: dec(it, "reserved"),
		CreatedAt: tm(it, "created_at"), UpdatedAt: tm(it, "updated_at"), MintSentAt: tm(it, "mint_sent_at"), RefundSentAt: tm(it, "refund_sent_at"),
		Attempt: integer(it, "attempt"), Version: version(it),
	}
	_ = json.Unmarshal([]byte(str(it, "steps")), &t.Steps)
	return t
}

func laneItem(l bridge.Lane) map[string]types.AttributeValue {
	it := key(lanePrefix+l.ID.String(), skState)
	it["lane"], it["source_registry"], it["target_registry"] = sv(l.ID.String()), sv(l.ID.From), sv(l.ID.To)
	it["paused"] = &types.AttributeValueMemberBOOL{Value: l.Paused}
	it["tuned"] = &types.AttributeValueMemberBOOL{Value: l.Tuned}
	it["bucket"], it["bucket_at"] = dv(l.Bucket), tv(l.BucketAt)
	it["fee_rate"], it["min"], it["max"] = dv(l.Limits.FeeRate), dv(l.Limits.Min), dv(l.Limits.Max)
	it["capacity"], it["refill_per_second"] = dv(l.Limits.Capacity), dv(l.Limits.Refill)
	it["version"] = nv(l.Version + 1)
	return it
}

func laneFrom(it map[string]types.AttributeValue) bridge.Lane {
	return bridge.Lane{
		ID:     bridge.LaneID{From: str(it, "source_registry"), To: str(it, "target_registry")},
		Paused: boolean(it, "paused"), Tuned: boolean(it, "tuned"), Bucket: dec(it, "bucket"), BucketAt: tm(it, "bucket_at"),
		Limits: bridge.Limits{FeeRate: dec(it, "fee_rate"), Min: dec(it, "min"), Max: dec(it, "max"),
			Capacity: dec(it, "capacity"), Refill: dec(it, "refill_per_second")},
		Version: version(it),
	}
}

func bookItem(b bridge.Book) map[string]types.AttributeValue {
	it := key(bookPrefix+b.Registry, skState)
	it["registry"] = sv(b.Registry)
	for k, v := range map[string]decimal.Decimal{"seeded": b.Seeded, "locked": b.Locked, "deposits": b.Deposits, "fees": b.Fees,
		"mints": b.Mints, "refunds": b.Refunds, "teg_fees": b.TEGFees, "reserved": b.Reserved,
		"balance": b.Balance(), "available": b.Available()} {
		it[k] = dv(v)
	}
	it["low_liquidity"] = &types.AttributeValueMemberBOOL{Value: b.LowLiquidity}
	it["updated_at"] = tv(b.UpdatedAt)
	it["version"] = nv(b.Version + 1)
	return it
}

func bookFrom(it map[string]types.AttributeValue) bridge.Book {
	return bridge.Book{Registry: str(it, "registry"), Seeded: dec(it, "seeded"), Locked: dec(it, "locked"), Deposits: dec(it, "deposits"),
		Fees: dec(it, "fees"), Mints: dec(it, "mints"), Refunds: dec(it, "refunds"), TEGFees: dec(it, "teg_fees"),
		Reserved: dec(it, "reserved"), LowLiquidity: boolean(it, "low_liquidity"), UpdatedAt: tm(it, "updated_at"), Version: version(it)}
}

func entryItem(e bridge.Entry) map[string]types.AttributeValue {
	it := key(ledgerPrefix+e.Ref, fmt.Sprintf("%04d", e.Seq))
	it["kind"], it["registry"], it["amount"], it["at"] = sv(e.Kind), sv(e.Registry), dv(e.Amount), tv(e.At)
	if e.Account != "" {
		it["account"] = sv(e.Account)
	}
	if e.TxID != "" {
		it["transaction_id"] = sv(e.TxID)
	}
	return it
}

func auditItem(a bridge.AuditEntry) map[string]types.AttributeValue {
	it := key(auditPrefix+a.RequestID, skEntry)
	for k, v := range map[string]string{"request_id": a.RequestID, "operator": a.Operator, "action": a.Action,
		"target": a.Target, "detail": a.Detail, "reason": a.Reason} {
		if v != "" {
			it[k] = sv(v)
		}
	}
	it["at"] = tv(a.At)
	it["GSI1PK"], it["GSI1SK"] = sv(auditIndexPK), sv(a.At.UTC().Format(time.RFC3339Nano)+"#"+a.RequestID)
	return it
}

func (s *Store) auditPut(a bridge.AuditEntry) types.TransactWriteItem {
	return s.put(auditItem(a), aws.String("attribute_not_exists(PK)"), nil)
}

// transact runs a transaction whose item i conflicts as which[i].
func (s *Store) transact(ctx context.Context, what string, items []types.TransactWriteItem, which []string) error {
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		// The reasons come in the order of the items. AWS says "None" for an item that did
		// not fail; the local emulator says "".
		for i, r := range canceled.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" && i < len(which) {
				return federation.Wrap(federation.ECONFLICT, &bridge.Conflict{Which: which[i]}, what+": the "+which[i]+" changed")
			}
		}
		for _, r := range canceled.CancellationReasons {
			if c := aws.ToString(r.Code); c == "TransactionConflict" {
				return federation.Wrap(federation.ECONFLICT, &bridge.Conflict{Which: which[0]}, what+": a concurrent transaction")
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	return nil
}

// Snapshot implements bridge.Store with one BatchGetItem (at most 100 keys: a few dozen
// lanes).
func (s *Store) Snapshot(ctx context.Context, dids []string, transferID string, lanes []bridge.LaneID, sender, idemKey string) (bridge.Snapshot, error) {
	var keys []map[string]types.AttributeValue
	for _, d := range dids {
		keys = append(keys, key(agentPrefix+d, skRoute))
	}
	if transferID != "" {
		keys = append(keys, key(transferPrefix+transferID, skState))
	}
	for _, l := range lanes {
		keys = append(keys, key(lanePrefix+l.String(), skState))
	}
	if idemKey != "" {
		keys = append(keys, key(keyPrefix+sender+"#"+idemKey, skKey))
	}
	// Strongly consistent: a request that lost a race for its deposit must see the winner
	// on its next read.
	items, err := s.batchGetConsistent(ctx, dedupe(keys))
	if err != nil {
		return bridge.Snapshot{}, fmt.Errorf("bridge snapshot: %w", err)
	}
	snap := bridge.Snapshot{Agents: map[string]federation.Agent{}, Lanes: map[bridge.LaneID]bridge.Lane{}}
	for _, it := range items {
		pk := str(it, AttrPK)
		switch {
		case strings.HasPrefix(pk, agentPrefix):
			a := agentFrom(it)
			snap.Agents[a.DID] = a
		case strings.HasPrefix(pk, keyPrefix):
			snap.KeyTransfer, snap.KeyHash = str(it, "transfer_id"), str(it, "request_hash")
		case strings.HasPrefix(pk, lanePrefix):
			l := laneFrom(it)
			snap.Lanes[l.ID] = l
		case strings.HasPrefix(pk, transferPrefix):
			t := transferFrom(it)
			snap.Transfer = &t
		}
	}
	return snap, nil
}

func dedupe(keys []map[string]types.AttributeValue) []map[string]types.AttributeValue {
	seen := map[string]bool{}
	out := keys[:0]
	for _, k := range keys {
		id := str(k, AttrPK) + "\x00" + str(k, AttrSK)
		if !seen[id] {
			seen[id] = true
			out = append(out, k)
		}
	}
	return out
}

// Accept implements bridge.Store: the transfer, its key and the lane in one transaction.
func (s *Store) Accept(ctx context.Context, a bridge.Acceptance) error {
	cond, vals := versioned(a.Transfer.Version)
	items := []types.TransactWriteItem{s.put(transferItem(a.Transfer), cond, vals)}
	which := []string{bridge.ConflictTransfer}
	lcond, lvals := versioned(a.Lane.Version)
	items = append(items, s.put(laneItem(a.Lane), lcond, lvals))
	which = append(which, bridge.ConflictLane)
	if a.Key != "" {
		k := key(keyPrefix+a.Transfer.Sender+"#"+a.Key, skKey)
		k["transfer_id"], k["request_hash"] = sv(a.Transfer.ID), sv(a.Transfer.RequestHash)
		k["expires_at"] = nv(a.Transfer.CreatedAt.Add(keyTTL).Unix())
		items = append(items, s.put(k, aws.String("attribute_not_exists(PK)"), nil))
		which = append(which, bridge.ConflictKey)
	}
	return s.transact(ctx, "accept transfer "+a.Transfer.ID, items, which)
}

// Transfer implements bridge.Store with a strongly consistent read: a step must see the
// previous step's write.
func (s *Store) Transfer(ctx context.Context, id string) (bridge.Transfer, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(transferPrefix+id, skState), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return bridge.Transfer{}, fmt.Errorf("get transfer %s: %w", id, translate(err))
	}
	if out.Item == nil {
		return bridge.Transfer{}, federation.Errorf(federation.ENOTFOUND, "no transfer %s", id)
	}
	return transferFrom(out.Item), nil
}

// Commit implements bridge.Store with one transaction.
func (s *Store) Commit(ctx context.Context, c bridge.Change) error {
	cond, vals := versioned(c.Transfer.Version)
	items := []types.TransactWriteItem{s.put(transferItem(c.Transfer), cond, vals)}
	which := []string{bridge.ConflictTransfer}
	for _, b := range c.Books {
		bc, bv := versioned(b.Version)
		items = append(items, s.put(bookItem(b), bc, bv))
		which = append(which, bridge.ConflictBook)
	}
	for _, e := range c.Entries {
		items = append(items, s.put(entryItem(e), aws.String("attribute_not_exists(PK)"), nil))
		which = append(which, "ledger")
	}
	if c.ClaimDeposit {
		d := c.Transfer.Deposit
		claim := key(depositPrefix+d.Registry+"#"+d.TransactionID, skClaim)
		claim["transfer_id"], claim["claimed_at"] = sv(c.Transfer.ID), tv(c.Transfer.UpdatedAt)
		items = append(items, s.put(claim, aws.String("attribute_not_exists(PK) OR transfer_id = :id"),
			map[string]types.AttributeValue{":id": sv(c.Transfer.ID)}))
		which = append(which, bridge.ConflictDeposit)
	}
	return s.transact(ctx, "commit transfer "+c.Transfer.ID, items, which)
}

// Books implements bridge.Store with strongly consistent reads: a reservation must see
// the last one.
func (s *Store) Books(ctx context.Context, registries []string) (map[string]bridge.Book, error) {
	out := map[string]bridge.Book{}
	if len(registries) == 1 {
		res, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(bookPrefix+registries[0], skState), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("get book %s: %w", registries[0], translate(err))
		}
		if res.Item != nil {
			out[registries[0]] = bookFrom(res.Item)
		}
		return out, nil
	}
	keys := make([]map[string]types.AttributeValue, len(registries))
	for i, r := range registries {
		keys[i] = key(bookPrefix+r, skState)
	}
	items, err := s.batchGetConsistent(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get books: %w", err)
	}
	for _, it := range items {
		b := bookFrom(it)
		out[b.Registry] = b
	}
	return out, nil
}

// batchGetConsistent is batchGet with strongly consistent reads, for up to 100 keys.
func (s *Store) batchGetConsistent(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	pending := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for attempt := 0; len(pending) > 0 && len(keys) > 0; attempt++ {
		if attempt > maxBatchRetries {
			return nil, federation.Errorf(federation.EUNAVAILABLE, "the table is busy; try again")
		}
		if attempt > 0 {
			if err := wait.Sleep(ctx, time.Duration(25<<attempt)*time.Millisecond); err != nil {
				return nil, err
			}
		}
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return nil, translate(err)
		}
		items = append(items, out.Responses[s.table]...)
		pending = out.UnprocessedKeys
	}
	return items, nil
}

// Lanes implements bridge.Store.
func (s *Store) Lanes(ctx context.Context, ids []bridge.LaneID) (map[bridge.LaneID]bridge.Lane, error) {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = key(lanePrefix+id.String(), skState)
	}
	items, err := s.batchGetConsistent(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get lanes: %w", err)
	}
	out := map[bridge.LaneID]bridge.Lane{}
	for _, it := range items {
		l := laneFrom(it)
		out[l.ID] = l
	}
	return out, nil
}

// PutLane implements bridge.Store.
func (s *Store) PutLane(ctx context.Context, l bridge.Lane, audit *bridge.AuditEntry) error {
	cond, vals := versioned(l.Version)
	items := []types.TransactWriteItem{s.put(laneItem(l), cond, vals)}
	which := []string{bridge.ConflictLane}
	if audit != nil {
		items = append(items, s.auditPut(*audit))
		which = append(which, bridge.ConflictAudit)
	}
	return s.transact(ctx, "put lane "+l.ID.String(), items, which)
}

// Seed implements bridge.Store.
func (s *Store) Seed(ctx context.Context, b bridge.Book, e bridge.Entry, audit bridge.AuditEntry) error {
	cond, vals := versioned(b.Version)
	return s.transact(ctx, "seed "+b.Registry, []types.TransactWriteItem{
		s.auditPut(audit),
		s.put(bookItem(b), cond, vals),
		s.put(entryItem(e), aws.String("attribute_not_exists(PK)"), nil),
	}, []string{bridge.ConflictAudit, bridge.ConflictBook, "ledger"})
}

// Audit implements bridge.Store.
func (s *Store) Audit(ctx context.Context, a bridge.AuditEntry) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: auditItem(a),
		ConditionExpression: aws.String("attribute_not_exists(PK)")})
	if err != nil {
		if federation.ErrorCode(translate(err)) == federation.ECONFLICT {
			return federation.Wrap(federation.ECONFLICT, &bridge.Conflict{Which: bridge.ConflictAudit}, "request "+a.RequestID+" was applied before")
		}
		return fmt.Errorf("audit %s: %w", a.RequestID, translate(err))
	}
	return nil
}

// AuditLog implements bridge.Store.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]bridge.AuditEntry, error) {
	items, err := s.indexItems(ctx, auditIndexPK, limit, false)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	out := make([]bridge.AuditEntry, 0, len(items))
	for _, it := range items {
		out = append(out, bridge.AuditEntry{RequestID: str(it, "request_id"), Operator: str(it, "operator"), Action: str(it, "action"),
			Target: str(it, "target"), Detail: str(it, "detail"), Reason: str(it, "reason"), At: tm(it, "at")})
	}
	return out, nil
}

// indexItems queries GSI1 for a partition (keys only) and reads the items, in index
// order (ascending or not).
func (s *Store) indexItems(ctx context.Context, pk string, limit int, ascending bool) ([]map[string]types.AttributeValue, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String("GSI1"),
		KeyConditionExpression:    aws.String("GSI1PK = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": sv(pk)},
		ScanIndexForward:          aws.Bool(ascending), Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, translate(err)
	}
	if len(out.Items) == 0 {
		return nil, nil
	}
	keys := make([]map[string]types.AttributeValue, len(out.Items))
	order := map[string]int{}
	for i, it := range out.Items {
		keys[i] = key(str(it, AttrPK), str(it, AttrSK))
		order[str(it, AttrPK)] = i
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	sorted := make([]map[string]types.AttributeValue, len(out.Items))
	for _, it := range items {
		sorted[order[str(it, AttrPK)]] = it
	}
	res := sorted[:0]
	for _, it := range sorted {
		if it != nil {
			res = append(res, it)
		}
	}
	return res, nil
}

// LedgerEntries implements bridge.Store.
func (s *Store) LedgerEntries(ctx context.Context, ref string) ([]bridge.Entry, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(ledgerPrefix + ref)},
	})
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", ref, translate(err))
	}
	entries := make([]bridge.Entry, 0, len(out.Items))
	for _, it := range out.Items {
		seq, _ := strconv.Atoi(str(it, AttrSK))
		entries = append(entries, bridge.Entry{Ref: ref, Seq: seq, Kind: str(it, "kind"), Registry: str(it, "registry"),
			Amount: dec(it, "amount"), Account: str(it, "account"), TxID: str(it, "transaction_id"), At: tm(it, "at")})
	}
	return entries, nil
}

// Parked implements bridge.Store.
func (s *Store) Parked(ctx context.Context, limit int) ([]bridge.Transfer, error) {
	return s.transfersOf(ctx, parkedIndexPK, limit)
}

// InFlight implements bridge.Store.
func (s *Store) InFlight(ctx context.Context, lane bridge.LaneID, limit int) ([]bridge.Transfer, error) {
	return s.transfersOf(ctx, inflightPrefix+lane.String(), limit)
}

func (s *Store) transfersOf(ctx context.Context, pk string, limit int) ([]bridge.Transfer, error) {
	items, err := s.indexItems(ctx, pk, limit, true)
	if err != nil {
		return nil, fmt.Errorf("transfers of %s: %w", pk, err)
	}
	out := make([]bridge.Transfer, 0, len(items))
	for _, it := range items {
		t := transferFrom(it)
		// The index may lag the item: keep what is still in that state.
		if (pk == parkedIndexPK) == (t.Status == bridge.StatusManualReview) && !bridge.Final(t.Status) {
			out = append(out, t)
		}
	}
	return out, nil
}

// CountInFlight implements bridge.Store.
func (s *Store) CountInFlight(ctx context.Context, lane bridge.LaneID) (int, error) {
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String("GSI1"), Select: types.SelectCount,
		KeyConditionExpression:    aws.String("GSI1PK = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": sv(inflightPrefix + lane.String())},
	}
	n := 0
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("count in flight on %s: %w", lane, translate(err))
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Claimed implements bridge.Store.
func (s *Store) Claimed(ctx context.Context, deposits []bridge.Deposit) (map[bridge.Deposit]string, error) {
	out := map[bridge.Deposit]string{}
	if len(deposits) == 0 {
		return out, nil
	}
	keys := make([]map[string]types.AttributeValue, len(deposits))
	for i, d := range deposits {
		keys[i] = key(depositPrefix+d.Registry+"#"+d.TransactionID, skClaim)
	}
	items, err := s.batchGet(ctx, dedupe(keys))
	if err != nil {
		return nil, fmt.Errorf("claimed deposits: %w", err)
	}
	for _, it := range items {
		rest := strings.TrimPrefix(str(it, AttrPK), depositPrefix)
		reg, tx, _ := strings.Cut(rest, "#")
		out[bridge.Deposit{Registry: reg, TransactionID: tx}] = str(it, "transfer_id")
	}
	return out, nil
}

// Transfers implements bridge.Store.
func (s *Store) Transfers(ctx context.Context, ids []string) (map[string]bridge.Transfer, error) {
	out := map[string]bridge.Transfer{}
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = key(transferPrefix+id, skState)
	}
	items, err := s.batchGet(ctx, dedupe(keys))
	if err != nil {
		return nil, fmt.Errorf("get transfers: %w", err)
	}
	for _, it := range items {
		t := transferFrom(it)
		out[t.ID] = t
	}
	return out, nil
}

// RecordReconciliation implements bridge.Store.
func (s *Store) RecordReconciliation(ctx context.Context, r bridge.Reconciliation) error {
	it := key(reconPrefix+r.Registry, skLatest)
	it["registry"], it["at"] = sv(r.Registry), tv(r.At)
	if r.Error != "" {
		it["error"] = sv(r.Error)
	} else {
		it["balance"], it["books"], it["unclaimed"], it["unrecorded"], it["drift"] = dv(r.Balance), dv(r.Books), dv(r.Unclaimed), dv(r.Unrecorded), dv(r.Drift)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it}); err != nil {
		return fmt.Errorf("record reconciliation of %s: %w", r.Registry, translate(err))
	}
	return nil
}

// Reconciliations implements bridge.Store.
func (s *Store) Reconciliations(ctx context.Context, registries []string) (map[string]bridge.Reconciliation, error) {
	out := map[string]bridge.Reconciliation{}
	if len(registries) == 0 {
		return out, nil
	}
	keys := make([]map[string]types.AttributeValue, len(registries))
	for i, r := range registries {
		keys[i] = key(reconPrefix+r, skLatest)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get reconciliations: %w", err)
	}
	for _, it := range items {
		r := bridge.Reconciliation{Registry: str(it, "registry"), At: tm(it, "at"), Error: str(it, "error"),
			Balance: dec(it, "balance"), Books: dec(it, "books"), Unclaimed: dec(it, "unclaimed"), Unrecorded: dec(it, "unrecorded"), Drift: dec(it, "drift")}
		out[r.Registry] = r
	}
	return out, nil
}
