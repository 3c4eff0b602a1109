package localstack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// TestKumoPlaceholderPrefix shows a difference of the emulator from DynamoDB that the
// store works around (shared/dynamo placeholder): expression attribute names are
// substituted as text, so the name of #k1 also replaces the start of #k10. When this test
// fails, the emulator behaves like DynamoDB and the workaround can go.
func TestKumoPlaceholderPrefix(t *testing.T) {
	ep := start(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(ep.URL)}, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	table := fmt.Sprint("quirk-", ep.Addr)
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	expr := "SET "
	for i := range 11 {
		if i > 0 {
			expr += ", "
		}
		expr += fmt.Sprintf("#k%d = :v", i)
		names[fmt.Sprintf("#k%d", i)] = fmt.Sprintf("name-%c", 'a'+i)
	}
	for i := range 40 { // the emulator substitutes in map order: try until the order shows it
		key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: fmt.Sprint("x", i)}}
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key, UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: names, ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := out.Item["name-k"]; !ok {
			t.Logf("#k10 was stored as something else: %d attributes", len(out.Item))
			return
		}
	}
	t.Error("#k1 never rewrote #k10: the emulator now substitutes placeholders like DynamoDB; remove the fixed-width placeholders of shared/dynamo")
}

// TestKumoHasNoUpdateStateMachine shows why infra/devstack replaces a state machine of the
// same name instead of updating it: the emulator does not implement UpdateStateMachine.
// When this test fails, it does, and devstack can update in place.
func TestKumoHasNoUpdateStateMachine(t *testing.T) {
	ep := start(t)
	client := sfn.NewFromConfig(localConfig(ep.URL))
	ctx := context.Background()
	sm, err := client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String(fmt.Sprint("quirk-update-", ep.Addr)),
		Definition: aws.String(`{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}`), RoleArn: aws.String("arn:aws:iam::000000000000:role/x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.UpdateStateMachine(ctx, &sfn.UpdateStateMachineInput{StateMachineArn: sm.StateMachineArn,
		Definition: aws.String(`{"StartAt":"B","States":{"B":{"Type":"Succeed"}}}`)})
	if err == nil || !strings.Contains(err.Error(), "InvalidAction") {
		t.Errorf("UpdateStateMachine: %v; the emulator implements it now: let devstack update state machines in place", err)
	}
}

// TestKumoExecutionHistoryHasNoStates shows why make bench counts a transfer's state
// transitions by walking the state machine along the steps the transfer recorded
// (infra/bridgesim/transitions.go) rather than from GetExecutionHistory: the emulator's
// history holds the execution's start and end only, no state entered or exited. When this
// test fails, the bench can count the history's StateEntered events instead.
func TestKumoExecutionHistoryHasNoStates(t *testing.T) {
	ep := start(t)
	ctx := context.Background()
	client := sfn.NewFromConfig(localConfig(ep.URL))
	out := run(t, client, fmt.Sprint("quirk-history-", time.Now().UnixNano()),
		`{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": true}}}`, "unused")
	if out.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("%s", out.Status)
	}
	h, err := client.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: out.ExecutionArn})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range h.Events {
		kinds = append(kinds, string(ev.Type))
	}
	if strings.Contains(strings.Join(kinds, " "), "StateEntered") || len(kinds) != 2 {
		t.Errorf("history %v: the emulator now records states", kinds)
	}
}
