// Command probe is a Lambda function for the dev stack's tests: it echoes the event it got,
// and crashes, hangs, panics or answers garbage when asked to; it also takes its time
// (sleep), writes its process ID to a file (?pidfile= with crash and hang) and invokes
// itself through the Lambda API (self).
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	lambdasvc "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/federation-gateway/gateway/shared/config"
)

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev events.APIGatewayV2HTTPRequest
	_ = json.Unmarshal(raw, &ev)
	if f := ev.QueryStringParameters["pidfile"]; f != "" {
		_ = os.WriteFile(f, []byte(itoa(os.Getpid())), 0o600)
	}
	switch ev.PathParameters["how"] {
	case "crash":
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
	case "sleep": // answers when it started and ended, and who it is
		start := time.Now()
		time.Sleep(300 * time.Millisecond)
		body, _ := json.Marshal(map[string]int64{"pid": int64(os.Getpid()), "start": start.UnixNano(), "end": time.Now().UnixNano()})
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: string(body)}, nil
	case "self": // a function that calls itself through the Lambda API, as a saga step might
		cfg, err := config.AWS(os.Getenv)
		if err != nil {
			return nil, err
		}
		out, err := lambdasvc.NewFromConfig(cfg).Invoke(ctx, &lambdasvc.InvokeInput{
			FunctionName: aws.String(os.Getenv("AWS_LAMBDA_FUNCTION_NAME")), Payload: []byte(`{"source":"aws.events"}`)})
		if err != nil {
			return nil, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: string(out.Payload)}, nil
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
