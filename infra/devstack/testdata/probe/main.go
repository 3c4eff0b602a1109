// Command probe is a Lambda function for the dev stack's tests: it echoes the event it got,
// and crashes, hangs, panics or answers garbage when asked to.
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, raw json.RawMessage) (any, error) {
	var ev events.APIGatewayV2HTTPRequest
	_ = json.Unmarshal(raw, &ev)
	switch ev.PathParameters["how"] {
	case "crash":
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
	case "panic":
		panic("probe panicked")
	case "garbage":
		return map[string]any{"statusCode": 9000, "body": "?"}, nil
	case "bare":
		return map[string]any{"bare": true}, nil
	case "pid":
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: itoa(os.Getpid())}, nil
	}
	if ev.Version == "" { // a scheduled event
		return "scheduled", nil
	}
	body, _ := json.Marshal(map[string]any{"event": ev, "env": map[string]string{
		"STAGE": os.Getenv("STAGE"), "TABLE": os.Getenv("TABLE"), "GREETING": os.Getenv("GREETING"),
		"TABLE_ARN": os.Getenv("TABLE_ARN"), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
	}})
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "application/json", "X-Probe": "yes"},
		Cookies:    []string{"session=1; Path=/"},
		Body:       string(body),
	}, nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func main() { lambda.Start(handle) }
