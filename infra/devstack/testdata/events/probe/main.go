// Command probe is a Lambda function for the tests of the dev stack's stream poller and
// WebSocket API. It writes what it receives to files in PROBE_DIR, fails stream records
// that ask for it, and answers WebSocket messages through the @connections API.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

func main() {
	lambda.Start(handle)
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records        []json.RawMessage
		RequestContext struct{ RouteKey string }
	}
	_ = json.Unmarshal(raw, &probe)
	if probe.Records != nil {
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		return stream(ev)
	}
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	return websocket(ctx, ev)
}

// stream records the batch (the PKs, one line an invocation) and then fails as its
// records ask: fail=error fails the invocation while the record is in it, fail=once
// fails the first invocation that has it, fail=report reports the record failed once.
func stream(ev events.DynamoDBEvent) (any, error) {
	var pks []string
	for _, r := range ev.Records {
		pks = append(pks, r.Change.Keys["PK"].String())
		if r.EventSource != "aws:dynamodb" || !strings.Contains(r.EventSourceArn, "/stream/") {
			return nil, fmt.Errorf("record %s: source %q %q", r.EventID, r.EventSource, r.EventSourceArn)
		}
	}
	appendLine("batches", strings.Join(pks, " "))
	resp := events.DynamoDBEventResponse{}
	for _, r := range ev.Records {
		pk := r.Change.Keys["PK"].String()
		switch r.Change.NewImage["fail"].String() {
		case "error":
			return nil, errors.New("record " + pk + " fails")
		case "once":
			if first("once-" + pk) {
				return nil, errors.New("record " + pk + " fails once")
			}
		case "report":
			if first("report-" + pk) {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
			}
		}
	}
	return resp, nil
}

// websocket answers the WebSocket API's routes.
func websocket(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (any, error) {
	rc := ev.RequestContext
	switch rc.RouteKey {
	case "$connect":
		if ev.Headers["X-Refuse"] != "" {
			return events.APIGatewayProxyResponse{StatusCode: 403, Body: "refused"}, nil
		}
		for _, p := range strings.Split(ev.Headers["Sec-Websocket-Protocol"], ",") {
			if strings.TrimSpace(p) == "probe.v1" {
				return events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": "probe.v1"}}, nil
			}
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "$disconnect":
		reason := ""
		if rc.DisconnectReason != nil {
			reason = *rc.DisconnectReason
		}
		appendLine("disconnects", fmt.Sprintf("%s %d %s", rc.ConnectionID, rc.DisconnectStatusCode, reason))
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "crash":
		return nil, errors.New("the function failed")
	}
	// Every other route answers through @connections what it got.
	answer, _ := json.Marshal(map[string]any{"route": rc.RouteKey, "body": ev.Body, "eventType": rc.EventType,
		"connectionId": rc.ConnectionID, "stage": rc.Stage})
	client := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       os.Getenv("AWS_REGION"),
		Credentials:  credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		BaseEndpoint: aws.String(os.Getenv("CONNECTIONS_URL")),
	})
	_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(rc.ConnectionID), Data: answer})
	return events.APIGatewayProxyResponse{StatusCode: 200}, err
}

func appendLine(file, line string) {
	f, err := os.OpenFile(filepath.Join(os.Getenv("PROBE_DIR"), file), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// first reports whether mark is new, and marks it.
func first(mark string) bool {
	f, err := os.OpenFile(filepath.Join(os.Getenv("PROBE_DIR"), "mark-"+mark), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
