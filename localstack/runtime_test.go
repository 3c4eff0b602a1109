package localstack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/federation-gateway/gateway/localstack"
)

// Two instances of one function poll their own Runtime API paths; two invocations run on
// them at once, and the watcher learns which instance took which request ID. An
// invocation whose instance is failed on its behalf answers the invoker with a function
// error at once.
func TestRuntimeInstances(t *testing.T) {
	ep := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fn := fmt.Sprintf("instances-%d", time.Now().UnixNano())
	client := lambda.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(ep.URL)})
	if _, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn), Role: aws.String("arn:aws:iam::000000000000:role/r"), Timeout: aws.Int32(10),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &types.FunctionCode{ZipFile: []byte("PK\x05\x06" + strings.Repeat("\x00", 18))},
	}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	took := map[string]string{} // request ID -> instance
	var kinds []localstack.RuntimeEventKind
	ep.Watch(func(ev localstack.RuntimeEvent) {
		if ev.Function != fn {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, ev.Kind)
		if ev.Kind == localstack.Took {
			took[ev.RequestID] = ev.Instance
		}
	})
	defer ep.Watch(nil)

	// Each instance answers after both have taken an invocation: they overlap.
	both := make(chan struct{})
	var taken sync.WaitGroup
	taken.Add(2)
	go func() { taken.Wait(); close(both) }()
	serve := func(instance string, fail bool) {
		base := "http://" + ep.RuntimeAPI(fn, instance) + "/2018-06-01/runtime/invocation/"
		resp, err := http.Get(base + "next")
		if err != nil {
			t.Error(err)
			return
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		taken.Done()
		<-both
		if fail { // the process "dies": the supervisor fails the invocation for it
			if err := ep.FailInvocation(ctx, fn, id, "Runtime.ExitError", "exit status 3"); err != nil {
				t.Error(err)
			}
			return
		}
		resp, err = http.Post(base+id+"/response", "application/json", strings.NewReader(`{"by":"`+instance+`","got":`+string(payload)+`}`))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	}
	var served sync.WaitGroup
	for _, in := range []struct {
		id   string
		fail bool
	}{{"1", false}, {"2", true}} {
		served.Add(1)
		go func() {
			defer served.Done()
			serve(in.id, in.fail)
		}()
	}

	// kumo answers 502 to an invoke before any process ever polled (the SDK retries it).
	if err := ep.WaitPolling(ctx, fn); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out *lambda.InvokeOutput
		err error
	}
	results := make(chan result, 2)
	for i := range 2 {
		go func() {
			out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(fmt.Sprint(i))})
			results <- result{out, err}
		}()
	}
	var ok, failed int
	for range 2 {
		r := <-results
		switch {
		case r.err != nil:
			t.Fatal(r.err)
		case r.out.FunctionError != nil:
			if !strings.Contains(string(r.out.Payload), "Runtime.ExitError") {
				t.Errorf("failed invocation answered %s", r.out.Payload)
			}
			failed++
		case strings.Contains(string(r.out.Payload), `"by":"1"`):
			ok++
		default:
			t.Errorf("answer %s", r.out.Payload)
		}
	}
	if ok != 1 || failed != 1 {
		t.Errorf("%d answered, %d failed; want 1 and 1", ok, failed)
	}
	served.Wait() // an instance hears back after the watcher was told
	mu.Lock()
	defer mu.Unlock()
	if len(took) != 2 || took[""] != "" {
		t.Errorf("took: %v", took)
	}
	instances := map[string]bool{}
	for _, in := range took {
		instances[in] = true
	}
	if !instances["1"] || !instances["2"] {
		t.Errorf("instances that took an invocation: %v", instances)
	}
	count := map[localstack.RuntimeEventKind]int{}
	for _, k := range kinds {
		count[k]++
	}
	if count[localstack.InvokeStarted] != 2 || count[localstack.InvokeEnded] != 2 || count[localstack.Answered] != 1 || count[localstack.PollStarted] != 2 {
		t.Errorf("events: %v", count)
	}
}
