package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/infra/localtest"
)

// Quirk of the local emulator (kumo v0.33.1): it runs transactions one at a time, so
// concurrent transactions on one item never cancel each other. On AWS they may, with the
// reason TransactionConflict, which Store.Admit retries a few times before it answers
// EUNAVAILABLE. That retry cannot be exercised against the emulator; this test says so,
// and fails the day the emulator (or LocalStack in its place) starts to conflict, when
// the retry deserves a test of its own.
func TestQuirkTransactionsNeverConflictLocally(t *testing.T) {
	db, table := localtest.DynamoDB(t), localtest.Table(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Update: &types.Update{
					TableName: aws.String(table),
					Key: map[string]types.AttributeValue{
						"PK": &types.AttributeValueMemberS{Value: "RATE#quirk"}, "SK": &types.AttributeValueMemberS{Value: "COUNT"},
					},
					UpdateExpression:          aws.String("ADD n :one"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
				}},
				{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{
					"PK": &types.AttributeValueMemberS{Value: fmt.Sprint("MSG#quirk-", i)}, "SK": &types.AttributeValueMemberS{Value: "DELIVERY"},
				}}},
			}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var canceled *types.TransactionCanceledException
		if errors.As(err, &canceled) {
			t.Errorf("the emulator cancelled a concurrent transaction (%v): Store.Admit's conflict retry can now be tested here", err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
}
