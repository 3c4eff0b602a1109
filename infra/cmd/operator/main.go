// Command operator invokes the bridge's OperatorFunction of the local cloud (make run)
// through the Lambda API, as `aws lambda invoke` would, and prints its answer:
//
//	go run ./infra/cmd/operator '{"action":"lanes"}'
//	go run ./infra/cmd/operator '{"action":"pause","lane":"alpha->beta","request_id":"p-1","operator":"alice","reason":"drift"}'
//
// On AWS, use `aws lambda invoke --function-name <OperatorFunctionName output>`: the IAM
// permission lambda:InvokeFunction is what authenticates operators.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/federation-gateway/gateway/infra/devstack"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:4566", "the local AWS endpoint")
	function := flag.String("function", "OperatorFunction", "the operator function's name")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, `usage: operator [-endpoint URL] '{"action": "lanes" | "seed" | "pause" | "resume" | "set_limits" | "list_manual_review" | "resolve" | "audit_log", ...}'`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || !json.Valid([]byte(flag.Arg(0))) {
		flag.Usage()
		os.Exit(2)
	}
	client := lambda.NewFromConfig(devstack.LocalAWSConfig(*endpoint))
	out, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(*function), Payload: []byte(flag.Arg(0))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		os.Exit(1)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out.Payload, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(out.Payload)
	}
	fmt.Println(pretty.String())
	if out.FunctionError != nil {
		os.Exit(1)
	}
}
