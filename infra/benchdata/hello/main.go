// Command hello is the smallest aws-lambda-go function: the baseline `make bench` compares
// each function's cold start and size with. It does nothing, so what it costs is what the
// runtime library and the Go runtime cost.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(ctx context.Context, e json.RawMessage) (string, error) { return "hello", nil })
}
