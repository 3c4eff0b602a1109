package localtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/shared/dynamo"
)

// TestMotoCanceledTransactionLosesWrites shows why the tests' moto serves one request at a
// time (motoScript): moto's server undoes a canceled transaction by putting back a copy of
// each table it names, taken when it started, so a write that another request made to the
// table meanwhile is lost although it succeeded; and a copy taken while another request
// changes the table fails the transaction with a 500. DynamoDB undoes only the
// transaction's own items, and isolates transactions from other writes. When this test
// fails, moto's transactions bear concurrent writes and the serialization can go.
func TestMotoCanceledTransactionLosesWrites(t *testing.T) {
	if Engine(t) != EngineMoto {
		t.Skipf("a quirk of moto: it runs in the moto pass (%s=%s, make gotest-moto)", EngineEnv, EngineMoto)
	}
	m, err := startMoto(false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.close() }()
	ctx := context.Background()
	db := dynamo.NewClient(devstack.LocalAWSConfig(m.url), true)
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("t"), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	item := func(k string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: k}}
	}
	set := "SET a0 = :v"
	for i := 1; i < 10; i++ {
		set += fmt.Sprintf(", a%d = :v", i)
	}
	// Whether a put lands while the transaction runs is up to the scheduler: a few rounds.
	const rounds = 30
	for round := range rounds {
		// A transaction of 99 updates whose last item's condition fails: it is canceled.
		// Updates, as moto parses each one's expression: the transaction takes long enough
		// for other requests to run meanwhile.
		var txn []types.TransactWriteItem
		for i := range 99 {
			txn = append(txn, types.TransactWriteItem{Update: &types.Update{
				TableName: aws.String("t"), Key: item(fmt.Sprintf("txn-%d-%d", round, i)), UpdateExpression: aws.String(set),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "v"}},
			}})
		}
		txn = append(txn, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String("t"), Key: item("missing"), ConditionExpression: aws.String("attribute_exists(PK)"),
		}})
		// Meanwhile, plain puts of other keys from four writers, each put acknowledged.
		done := make(chan struct{})
		var mu sync.Mutex
		var acked []string
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					k := fmt.Sprintf("put-%d-%d-%d", round, w, i)
					if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item(k)}); err == nil {
						mu.Lock()
						acked = append(acked, k)
						mu.Unlock()
					}
				}
			})
		}
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: txn})
		close(done)
		wg.Wait()
		var resp *awshttp.ResponseError
		if errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusInternalServerError {
			// The other way the same copy shows: taken while another request changes the
			// table, it fails ("dictionary changed size during iteration").
			t.Logf("round %d: the transaction failed with a 500 while other requests wrote to its table", round)
			return
		}
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			t.Fatalf("a transaction with a failing condition: %v", err)
		}
		for _, k := range acked {
			out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: item(k), ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if out.Item == nil {
				t.Logf("round %d: the acknowledged put of %s is gone after a concurrent transaction was canceled (%d puts made)", round, k, len(acked))
				return
			}
		}
	}
	t.Errorf("in %d rounds no acknowledged put was lost to a canceled transaction, nor did one fail: moto's transactions bear concurrent writes now; drop the serialization of motoScript", rounds)
}
