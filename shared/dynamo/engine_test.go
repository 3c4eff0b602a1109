package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/federation-gateway/gateway/infra/localtest"
)

// engineCheck is one behaviour DynamoDB documents, checked against the engine the tests run
// on (localtest.Engine: kumo, or moto in `make gotest-moto`).
type engineCheck struct {
	name string
	// deviates names the engines known to differ from DynamoDB here and says how the
	// gateway lives with it. An engine that starts to behave as DynamoDB fails the check
	// too, so the entry and its workaround go.
	deviates map[string]string
	// check reports whether the engine behaved as DynamoDB documents, and what it saw.
	check func(t *testing.T, e *engine) (bool, string)
}

type engine struct {
	db    *dynamodb.Client
	table string
	seq   atomic.Int64
}

// key returns a key no other check uses.
func (e *engine) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: fmt.Sprint("CHECK#", e.seq.Add(1))},
		"SK": &types.AttributeValueMemberS{Value: "X"},
	}
}

func (e *engine) put(t *testing.T, key map[string]types.AttributeValue, attrs map[string]types.AttributeValue) {
	t.Helper()
	item := maps.Clone(key)
	maps.Copy(item, attrs)
	if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func (e *engine) get(t *testing.T, key map[string]types.AttributeValue) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

// validation reports whether err is DynamoDB's ValidationException, and says what err was.
func validation(err error) (bool, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() == "ValidationException", ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return false, fmt.Sprintf("accepted (err = %v)", err)
}

// The engines' differences from DynamoDB that matter to the gateway, each as DynamoDB
// documents it (API reference of the operation named) and how the gateway copes.
var engineChecks = []engineCheck{
	{
		name: "BatchGetItem refuses duplicate keys",
		// BatchGetItem: "ValidationException ... Provided list of item keys contains duplicates".
		deviates: map[string]string{
			localtest.EngineKumo: "it accepts them and returns the item once per repeat; the store asks for each key once (batchGet), so a message from an agent to itself reads its record once on every engine",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			k := e.key()
			e.put(t, k, nil)
			_, err := e.db.BatchGetItem(context.Background(), &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				e.table: {Keys: []map[string]types.AttributeValue{k, k}},
			}})
			return validation(err)
		},
	},
	{
		name: "BatchWriteItem refuses two operations on one item",
		// BatchWriteItem: the whole batch is rejected for two puts of one key, or a put
		// and a delete of the same item.
		deviates: map[string]string{
			localtest.EngineKumo: "it accepts both; the store's index writes (reindex) name each key once, which TestRepeatedKeysInBatches counts",
			localtest.EngineMoto: "it compares whole put items as JSON text, so it refuses only two puts of one item with its attributes in the same order; as for kumo",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			var saw []string
			refused := true
			for name, second := range map[string]func(k map[string]types.AttributeValue) types.WriteRequest{
				"two puts": func(k map[string]types.AttributeValue) types.WriteRequest {
					other := maps.Clone(k)
					other["a"] = s("other")
					return types.WriteRequest{PutRequest: &types.PutRequest{Item: other}}
				},
				"a put and a delete": func(k map[string]types.AttributeValue) types.WriteRequest {
					return types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
				},
			} {
				k := e.key()
				_, err := e.db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
					e.table: {{PutRequest: &types.PutRequest{Item: k}}, second(k)},
				}})
				ok, what := validation(err)
				refused = refused && ok
				saw = append(saw, name+": "+what)
			}
			slices.Sort(saw)
			return refused, strings.Join(saw, "; ")
		},
	},
	{
		name: "numbers are decimals of up to 38 digits",
		// Data types: "Numbers ... can have up to 38 digits of precision"; ADD is exact.
		deviates: map[string]string{
			localtest.EngineKumo: "it computes in float64; money is a decimal string everywhere, and number arithmetic only counts (integers far below 2^53)",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			k := e.key()
			for _, v := range []string{"0.1", "0.2", "12345678901234567890"} {
				_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
					TableName: aws.String(e.table), Key: k, UpdateExpression: aws.String("ADD amount :v"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(v)},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			got := e.get(t, k)["amount"].(*types.AttributeValueMemberN).Value
			return got == "12345678901234567890.3", "0.1 + 0.2 + 12345678901234567890 = " + got
		},
	},
	{
		name: "ReturnValuesOnConditionCheckFailure returns the item",
		// PutItem: with ALL_OLD, ConditionalCheckFailedException carries the item's attributes.
		deviates: map[string]string{
			localtest.EngineKumo: "it ignores the parameter; the store does not use it (a failed claim is read again with GetItem)",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			k := e.key()
			e.put(t, k, map[string]types.AttributeValue{"holder": s("first")})
			item := maps.Clone(k)
			item["holder"] = s("second")
			_, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{
				TableName: aws.String(e.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)"),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			})
			var failed *types.ConditionalCheckFailedException
			if !errors.As(err, &failed) {
				t.Fatalf("a put over an existing item: %v", err)
			}
			holder, _ := failed.Item["holder"].(*types.AttributeValueMemberS)
			return holder != nil && holder.Value == "first", fmt.Sprintf("the exception's item: %v", failed.Item)
		},
	},
	{
		name: "a canceled transaction says None for the items that did not fail",
		// TransactWriteItems: CancellationReasons, one per item, "Code: None" where no error.
		deviates: map[string]string{
			localtest.EngineKumo: `it says ""; Store.Admit looks for "ConditionalCheckFailed" only, so both read the same`,
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			free, taken := e.key(), e.key()
			e.put(t, taken, nil)
			_, err := e.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: aws.String(e.table), Item: free, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
				{Put: &types.Put{TableName: aws.String(e.table), Item: taken, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
			}})
			var canceled *types.TransactionCanceledException
			if !errors.As(err, &canceled) {
				t.Fatalf("a transaction with a failing condition: %v", err)
			}
			var codes []string
			for _, r := range canceled.CancellationReasons {
				codes = append(codes, fmt.Sprintf("%q", aws.ToString(r.Code)))
			}
			got := strings.Join(codes, ", ")
			return got == `"None", "ConditionalCheckFailed"`, "reasons: " + got
		},
	},
	{
		name: "UPDATED_NEW returns only the updated attributes",
		// UpdateItem: UPDATED_NEW "returns only the updated attributes, as they appear after".
		deviates: map[string]string{
			localtest.EngineKumo: "it returns the whole item; the store never asks for UPDATED_NEW",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			k := e.key()
			e.put(t, k, map[string]types.AttributeValue{"a": s("1"), "b": s("2")})
			out, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
				TableName: aws.String(e.table), Key: k, UpdateExpression: aws.String("SET a = :v"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("3")}, ReturnValues: types.ReturnValueUpdatedNew,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, hasB := out.Attributes["b"]
			return len(out.Attributes) == 1 && !hasB, fmt.Sprintf("%d attributes returned", len(out.Attributes))
		},
	},
	{
		name: "a reserved word needs an expression attribute name",
		// Reserved words in DynamoDB: RESPONSE, STATUS, ... used bare are a ValidationException.
		deviates: map[string]string{
			localtest.EngineKumo: "it accepts them; the moto pass catches a bare reserved word (Store.Complete's response was one)",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
				TableName: aws.String(e.table), Key: e.key(), UpdateExpression: aws.String("SET response = :v"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("x")},
			})
			return validation(err)
		},
	},
	{
		name: "expression attribute names are whole tokens",
		// Expression attribute names: #k1 and #k10 are two names.
		deviates: map[string]string{
			localtest.EngineKumo: "it substitutes them as text, so #k1 rewrites the start of #k10; the store's placeholders are all of one width (placeholder)",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			names := map[string]string{}
			var sets []string
			for i := range 11 {
				sets = append(sets, fmt.Sprintf("#k%d = :v", i))
				names[fmt.Sprintf("#k%d", i)] = fmt.Sprintf("name_%c", 'a'+i)
			}
			for range 40 { // kumo substitutes in map order: try until the order shows it
				k := e.key()
				_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
					TableName: aws.String(e.table), Key: k, UpdateExpression: aws.String("SET " + strings.Join(sets, ", ")),
					ExpressionAttributeNames: names, ExpressionAttributeValues: map[string]types.AttributeValue{":v": n("1")},
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := e.get(t, k)["name_k"]; !ok {
					return false, "#k10 was stored under another name"
				}
			}
			return true, "#k10 was stored as name_k 40 times"
		},
	},
	{
		name: "a transaction refuses two operations on one item",
		// TransactWriteItems: "multiple operations on one item" is a ValidationException.
		deviates: map[string]string{
			localtest.EngineKumo: "it accepts them; every transaction of the store names distinct items, and the moto pass would refuse one that did not",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			k := e.key()
			_, err := e.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: aws.String(e.table), Item: k}},
				{ConditionCheck: &types.ConditionCheck{TableName: aws.String(e.table), Key: k, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
			}})
			return validation(err)
		},
	},
	{
		name: "an unused expression attribute value is refused",
		// UpdateItem: "Value provided in ExpressionAttributeValues unused in expressions".
		deviates: map[string]string{
			localtest.EngineKumo: "it accepts them; the moto pass refuses an expression of the store that leaves a value unused",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
				TableName: aws.String(e.table), Key: e.key(), UpdateExpression: aws.String("SET a = :v"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("x"), ":unused": s("y")},
			})
			return validation(err)
		},
	},
	{
		name: "an item is at most 400 KB",
		// Service quotas: "The maximum item size in DynamoDB is 400 KB".
		deviates: map[string]string{
			localtest.EngineKumo: "it stores larger items; what the store keeps is bounded far below (normalized records, delivery summaries of at most 16 KB), and the moto pass refuses one that is not",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			item := e.key()
			item["big"] = s(strings.Repeat("x", 401<<10))
			_, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item})
			return validation(err)
		},
	},
	{
		name: "an index key cannot be an empty string",
		// PutItem: an empty string as a secondary index key is a ValidationException.
		deviates: map[string]string{
			localtest.EngineKumo: "it accepts one; the store writes index keys only from non-empty values",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			item := e.key()
			item["GSI1PK"], item["GSI1SK"] = s(""), s("x")
			_, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item})
			return validation(err)
		},
	},
	{
		name: "a batch read takes at most 100 keys, a batch write 25 requests",
		// BatchGetItem: "up to 100 items"; BatchWriteItem: "as many as 25 put or delete
		// requests"; more is a ValidationException.
		deviates: map[string]string{
			localtest.EngineMoto: "it takes more than 25 write requests; the store writes 25 a request (batchWrite), and kumo refuses more",
		},
		check: func(t *testing.T, e *engine) (bool, string) {
			var keys []map[string]types.AttributeValue
			var writes []types.WriteRequest
			for i := range 101 {
				keys = append(keys, e.key())
				if i < 26 {
					writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: e.key()}})
				}
			}
			_, err := e.db.BatchGetItem(context.Background(), &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{e.table: {Keys: keys}}})
			readRefused, read := validation(err)
			_, err = e.db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{e.table: writes}})
			writeRefused, write := validation(err)
			return readRefused && writeRefused, "101 keys: " + read + "; 26 requests: " + write
		},
	},
	{
		name: "a canceled transaction keeps other requests' writes",
		// TransactWriteItems: a canceled transaction undoes its own items only, and
		// transactions are isolated from other writes. moto's server alone is not (see
		// localtest.TestMotoCanceledTransactionLosesWrites); the tests' moto serves one
		// request at a time.
		check: func(t *testing.T, e *engine) (bool, string) {
			set := "SET a0 = :v"
			for i := 1; i < 10; i++ {
				set += fmt.Sprintf(", a%d = :v", i)
			}
			for round := range 2 {
				var txn []types.TransactWriteItem
				for range 30 {
					txn = append(txn, types.TransactWriteItem{Update: &types.Update{
						TableName: aws.String(e.table), Key: e.key(), UpdateExpression: aws.String(set),
						ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("v")},
					}})
				}
				txn = append(txn, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
					TableName: aws.String(e.table), Key: e.key(), ConditionExpression: aws.String("attribute_exists(PK)"),
				}})
				done := make(chan struct{})
				var mu sync.Mutex
				var acked []map[string]types.AttributeValue
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for {
							select {
							case <-done:
								return
							default:
							}
							k := e.key()
							if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: k}); err == nil {
								mu.Lock()
								acked = append(acked, k)
								mu.Unlock()
							}
						}
					})
				}
				_, err := e.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: txn})
				close(done)
				wg.Wait()
				var canceled *types.TransactionCanceledException
				if !errors.As(err, &canceled) {
					return false, fmt.Sprintf("round %d: the transaction failed otherwise: %v", round, err)
				}
				for _, k := range acked {
					if e.get(t, k) == nil {
						return false, fmt.Sprintf("round %d: an acknowledged put is gone", round)
					}
				}
			}
			return true, "2 canceled transactions lost none of the puts made meanwhile"
		},
	},
}

// TestEngine checks the DynamoDB engine of the tests against what DynamoDB documents, and
// records each known deviation. `make test` runs it on kumo and on moto.
func TestEngine(t *testing.T) {
	name := localtest.Engine(t)
	e := &engine{db: localtest.DynamoDB(t), table: localtest.Table(t)}
	for _, c := range engineChecks {
		t.Run(c.name, func(t *testing.T) {
			ok, saw := c.check(t, e)
			workaround, deviates := c.deviates[name]
			switch {
			case deviates && ok:
				t.Errorf("%s now behaves as DynamoDB documents (%s): remove its entry and the workaround (%s)", name, saw, workaround)
			case !deviates && !ok:
				t.Errorf("%s differs from DynamoDB: %s", name, saw)
			case deviates:
				t.Logf("known difference of %s (%s): %s", name, saw, workaround)
			}
		})
	}
}
