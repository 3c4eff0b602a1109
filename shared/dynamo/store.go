// Package dynamo is the gateway's DynamoDB adapter: the single table of
// docs/architecture.md ("The table") behind the domain's store interfaces. DynamoDB errors
// become domain errors here, at its edge.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/wait"
)

// Key attributes and the fixed sort keys of the table.
const (
	AttrPK = "PK"
	AttrSK = "SK"

	registryPrefix = "REGISTRY#"
	skMeta         = "META"
)

// Store is the table.
type Store struct {
	db    *dynamodb.Client
	table string
}

// NewStore returns the Store of the table through the client.
func NewStore(db *dynamodb.Client, table string) *Store {
	return &Store{db: db, table: table}
}

// RegistryStates implements directory.StateStore with BatchGetItem, 100 keys a request.
func (s *Store) RegistryStates(ctx context.Context, ids []string) (map[string]federation.RegistryState, error) {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = key(registryPrefix+id, skMeta)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get registry states: %w", err)
	}
	states := make(map[string]federation.RegistryState, len(items))
	for _, it := range items {
		st := registryState(it)
		states[st.ID] = st
	}
	return states, nil
}

// maxBatchRetries bounds the retries of unprocessed keys: past it the table is throttling
// beyond what a request can wait for.
const maxBatchRetries = 5

// untilProcessed calls batch until it reports that nothing is left unprocessed, backing
// off between calls: the one retry loop of BatchGetItem and BatchWriteItem.
func untilProcessed(ctx context.Context, batch func() (done bool, err error)) error {
	for attempt := 0; ; attempt++ {
		if attempt > maxBatchRetries {
			return federation.Errorf(federation.EUNAVAILABLE, "the directory is busy; try again")
		}
		if attempt > 0 {
			if err := wait.Sleep(ctx, time.Duration(25<<attempt)*time.Millisecond); err != nil {
				return err
			}
		}
		done, err := batch()
		if err != nil || done {
			return err
		}
	}
}

func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	return s.batchGetProjected(ctx, keys, "", nil)
}

// batchGetProjected gets the items of keys, 100 a request, with a projection when proj
// is set. DynamoDB refuses a request that names one key twice (ValidationException), so
// each key is asked for once: a message from an agent to itself names its record twice.
func (s *Store) batchGetProjected(ctx context.Context, keys []map[string]types.AttributeValue, proj string, names map[string]string) ([]map[string]types.AttributeValue, error) {
	keys = distinctKeys(keys)
	var items []map[string]types.AttributeValue
	for len(keys) > 0 {
		n := min(len(keys), 100)
		ka := types.KeysAndAttributes{Keys: keys[:n]}
		if proj != "" {
			ka.ProjectionExpression, ka.ExpressionAttributeNames = aws.String(proj), names
		}
		pending := map[string]types.KeysAndAttributes{s.table: ka}
		keys = keys[n:]
		err := untilProcessed(ctx, func() (bool, error) {
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return false, translate(err)
			}
			items = append(items, out.Responses[s.table]...)
			pending = out.UnprocessedKeys
			return len(pending) == 0, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

// distinctKeys returns keys without repeats, in their first order.
func distinctKeys(keys []map[string]types.AttributeValue) []map[string]types.AttributeValue {
	seen := make(map[[2]string]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		id := [2]string{str(k, AttrPK), str(k, AttrSK)}
		if !seen[id] {
			seen[id] = true
			out = append(out, k)
		}
	}
	return out
}

// translate turns a DynamoDB error into a domain error: throttling is EUNAVAILABLE (the
// caller may retry), everything else EINTERNAL with the cause kept for the log.
func translate(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return federation.Wrap(federation.EUNAVAILABLE, err, "the directory is busy; try again")
		case "ConditionalCheckFailedException", "TransactionConflictException":
			return federation.Wrap(federation.ECONFLICT, err, "the item changed concurrently")
		}
	}
	return federation.Wrap(federation.EINTERNAL, err, "")
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func boolean(item map[string]types.AttributeValue, name string) bool {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func integer(item map[string]types.AttributeValue, name string) int {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.Atoi(v.Value)
		return n
	}
	return 0
}

func registryItem(st federation.RegistryState) map[string]types.AttributeValue {
	item := key(registryPrefix+st.ID, skMeta)
	item["registry_id"] = sv(st.ID)
	item["healthy"] = &types.AttributeValueMemberBOOL{Value: st.Healthy}
	item["consecutive_failures"] = nv(int64(st.ConsecutiveFailures))
	item["agents_active"] = nv(int64(st.Agents.Active))
	item["agents_stale"] = nv(int64(st.Agents.Stale))
	item["agents_gone"] = nv(int64(st.Agents.Gone))
	if st.LastError != "" {
		item["last_error"] = sv(st.LastError)
	}
	if !st.LastSync.IsZero() {
		item["last_sync"] = sv(st.LastSync.UTC().Format(time.RFC3339Nano))
	}
	if !st.UnhealthySince.IsZero() {
		item["unhealthy_since"] = sv(st.UnhealthySince.UTC().Format(time.RFC3339Nano))
	}
	if st.Skipped > 0 {
		item["skipped"] = nv(int64(st.Skipped))
	}
	if len(st.Problems) > 0 {
		item["problems"] = lv(st.Problems)
	}
	return item
}

func registryState(it map[string]types.AttributeValue) federation.RegistryState {
	st := federation.RegistryState{
		ID:                  str(it, "registry_id"),
		Healthy:             boolean(it, "healthy"),
		LastError:           str(it, "last_error"),
		ConsecutiveFailures: integer(it, "consecutive_failures"),
		Agents: federation.AgentCounts{
			Active: integer(it, "agents_active"), Stale: integer(it, "agents_stale"), Gone: integer(it, "agents_gone"),
		},
		Skipped: integer(it, "skipped"),
	}
	if p := list(it, "problems"); len(p) > 0 {
		st.Problems = p
	}
	if t, err := time.Parse(time.RFC3339Nano, str(it, "last_sync")); err == nil {
		st.LastSync = t
	}
	if t, err := time.Parse(time.RFC3339Nano, str(it, "unhealthy_since")); err == nil {
		st.UnhealthySince = t
	}
	return st
}

// AddAgents adds delta (which may be negative) to a registry's count of active agents: a
// targeted lookup's new agent, counted at once. The registry's next sync sets the count
// from its records again.
func (s *Store) AddAgents(ctx context.Context, registryID string, delta int) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(registryPrefix+registryID, skMeta),
		UpdateExpression:          aws.String("SET registry_id = :id ADD agents_active :d"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": nv(int64(delta)), ":id": sv(registryID)},
	})
	if err != nil {
		return fmt.Errorf("add %d agents to %s: %w", delta, registryID, translate(err))
	}
	return nil
}
