package localstack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/sivchari/kumo"
)

// A poll that is counted has reached kumo as far as invocations are concerned: an
// invocation made as soon as WaitPolling returns is handed to the function's process, even
// when the poll itself is still on its way to kumo (a busy machine; here a delay of 300 ms).
// Without register, kumo answered that invocation with a 502 "has no runtime handler".
func TestRuntimeRegisteredBeforePollCounted(t *testing.T) {
	emu := kumo.NewServer()
	t.Cleanup(emu.Close)
	target, err := url.Parse(emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(target, nil)
	slowPolls := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/invocation/next") {
			time.Sleep(300 * time.Millisecond)
		}
		proxy.ServeHTTP(w, r)
	})
	rw := newRuntimeWatch()
	front := httptest.NewServer(rw.handler(slowPolls))
	t.Cleanup(front.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const fn = "registered-early"
	lc := lambda.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(front.URL)})
	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &lambdatypes.FunctionCode{ZipFile: []byte{0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}); err != nil {
		t.Fatal(err)
	}
	base := front.URL + "/_runtime/" + fn + "/2018-06-01/runtime/invocation/"
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"next", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		resp.Body.Close()
		r, err := http.Post(base+resp.Header.Get("Lambda-Runtime-Aws-Request-Id")+"/response", "application/json", strings.NewReader(`{"ok":true}`))
		if err == nil {
			r.Body.Close()
		}
	}()
	if err := rw.wait(ctx, fn); err != nil {
		t.Fatal(err)
	}
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("invocation right after the first poll was counted: %v", err)
	}
	if out.FunctionError != nil || string(out.Payload) != `{"ok":true}` {
		t.Errorf("invocation right after the first poll was counted: %s %s", aws.ToString(out.FunctionError), out.Payload)
	}
}
