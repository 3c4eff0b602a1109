package localstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/federation-gateway/gateway/localstack"
)

func start(t *testing.T) *localstack.Endpoint {
	t.Helper()
	ep, err := localstack.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

func TestHealth(t *testing.T) {
	ep := start(t)
	resp, err := http.Get(ep.URL + "/_localstack/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct{ Services map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %d %v", resp.StatusCode, err)
	}
	for _, s := range []string{"dynamodb", "lambda", "ssm", "stepfunctions"} {
		if h.Services[s] != "running" {
			t.Errorf("service %s = %q", s, h.Services[s])
		}
	}
}

func TestListenError(t *testing.T) {
	ep := start(t)
	if _, err := localstack.Start(ep.Addr); err == nil || !strings.Contains(err.Error(), ep.Addr) {
		t.Errorf("a second endpoint on %s: err = %v", ep.Addr, err)
	}
}

// A Runtime API client polling through the endpoint is seen polling, receives the
// invocation and its answer reaches the invoker: the path real bootstrap binaries take.
func TestRuntimeAPIThroughTheProxy(t *testing.T) {
	ep := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fn := fmt.Sprintf("runtime-test-%d", time.Now().UnixNano())
	client := lambda.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(ep.URL),
	})
	if _, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn), Role: aws.String("arn:aws:iam::000000000000:role/r"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &types.FunctionCode{ZipFile: []byte("PK\x05\x06" + strings.Repeat("\x00", 18))},
	}); err != nil {
		t.Fatal(err)
	}
	if ep.Polling(fn) {
		t.Fatal("polling before any client polls")
	}

	served := make(chan error, 1)
	go func() {
		base := ep.URL + "/_runtime/" + fn + "/2018-06-01/runtime/invocation/"
		resp, err := http.Get(base + "next")
		if err != nil {
			served <- err
			return
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		answer := strings.NewReader(`{"echo":` + string(payload) + `}`)
		resp, err = http.Post(base+id+"/response", "application/json", answer)
		if err == nil {
			resp.Body.Close()
		}
		served <- err
	}()
	if err := ep.WaitPolling(ctx, fn); err != nil {
		t.Fatal(err)
	}
	out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != `{"echo":{"n":1}}` {
		t.Errorf("payload = %s", out.Payload)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := ep.WaitPolling(short, fn); err == nil {
		t.Error("WaitPolling returned with nobody polling")
	}
}
