// Package dynamo is the gateway's DynamoDB adapter: the single table of DESIGN §4 behind the
// domain's store interfaces. DynamoDB errors become domain errors here, at its edge.
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
)

// Key attributes and the fixed sort keys of the table.
const (
	AttrPK = "PK"
	AttrSK = "SK"

	registryPrefix = "REGISTRY#"
	skMeta         = "META"
	pkDirectory    = "DIRECTORY"
	skStats        = "STATS"
)

// NewClient returns a DynamoDB client for the SDK configuration. A local endpoint (the
// embedded emulator) sends no CRC32 checksum header, so response checksum validation is
// off for it, and only for it.
func NewClient(cfg aws.Config, localEndpoint bool) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if localEndpoint {
			o.DisableValidateResponseChecksum = true
		}
	})
}

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

// AgentCount implements directory.StateStore from the directory's counter item, which the
// sync keeps current: one GetItem instead of counting agents.
func (s *Store) AgentCount(ctx context.Context) (int, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key:       key(pkDirectory, skStats),
	})
	if err != nil {
		return 0, fmt.Errorf("get agent count: %w", translate(err))
	}
	return integer(out.Item, "agents"), nil
}

// maxBatchRetries bounds the retries of unprocessed keys: past it the table is throttling
// beyond what a request can wait for.
const maxBatchRetries = 5

func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for len(keys) > 0 {
		n := min(len(keys), 100)
		pending := map[string]types.KeysAndAttributes{s.table: {Keys: keys[:n]}}
		keys = keys[n:]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > maxBatchRetries {
				return nil, federation.Errorf(federation.EUNAVAILABLE, "the directory is busy; try again")
			}
			if attempt > 0 {
				if err := sleep(ctx, time.Duration(25<<attempt)*time.Millisecond); err != nil {
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
	}
	return items, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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

// RecordRegistryState stores what a sync run learnt of a registry.
func (s *Store) RecordRegistryState(ctx context.Context, st federation.RegistryState) error {
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: registryItem(st)}); err != nil {
		return fmt.Errorf("record registry %s: %w", st.ID, translate(err))
	}
	return nil
}

func registryItem(st federation.RegistryState) map[string]types.AttributeValue {
	item := key(registryPrefix+st.ID, skMeta)
	item["registry_id"] = &types.AttributeValueMemberS{Value: st.ID}
	item["healthy"] = &types.AttributeValueMemberBOOL{Value: st.Healthy}
	item["agent_count"] = &types.AttributeValueMemberN{Value: strconv.Itoa(st.AgentCount)}
	item["consecutive_failures"] = &types.AttributeValueMemberN{Value: strconv.Itoa(st.ConsecutiveFailures)}
	if st.LastError != "" {
		item["last_error"] = &types.AttributeValueMemberS{Value: st.LastError}
	}
	if !st.LastSync.IsZero() {
		item["last_sync"] = &types.AttributeValueMemberS{Value: st.LastSync.UTC().Format(time.RFC3339Nano)}
	}
	return item
}

func registryState(it map[string]types.AttributeValue) federation.RegistryState {
	st := federation.RegistryState{
		ID:                  str(it, "registry_id"),
		Healthy:             boolean(it, "healthy"),
		LastError:           str(it, "last_error"),
		AgentCount:          integer(it, "agent_count"),
		ConsecutiveFailures: integer(it, "consecutive_failures"),
	}
	if t, err := time.Parse(time.RFC3339Nano, str(it, "last_sync")); err == nil {
		st.LastSync = t
	}
	return st
}

// AddAgents adds delta (which may be negative) to the directory's agent counter.
func (s *Store) AddAgents(ctx context.Context, delta int) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(pkDirectory, skStats),
		UpdateExpression:          aws.String("ADD agents :d"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberN{Value: strconv.Itoa(delta)}},
	})
	if err != nil {
		return fmt.Errorf("add %d agents: %w", delta, translate(err))
	}
	return nil
}
