package dynamo_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/dynamo"
)

// laggingConn stands for a busy machine: the goroutine that writes a request is
// descheduled for a while after each write.
type laggingConn struct{ net.Conn }

func (c laggingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	time.Sleep(30 * time.Millisecond)
	return n, err
}

// The client keeps an answer that arrives while the transport is still finishing the
// request: one write, one attempt. The SDK's own client closes the request body when the
// answer's headers arrive, the transport's last check of the body then fails, and the
// connection is closed under the answer; the SDK sends the write again (as it did under
// load on moto, where a first use of a credential came back as a replay). When the SDK's
// client stops doing that, heldBodies can go.
func TestClientKeepsAnswersWhenTheSDKClosesTheBody(t *testing.T) {
	var requests atomic.Int32
	// A DynamoDB that answers as soon as it has the request, its headers first.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(60 * time.Millisecond)
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()

	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return laggingConn{c}, nil
		}}},
	}
	tests := []struct {
		name   string
		client *dynamodb.Client
		// sdkFault says the client is the SDK's own, which shows the fault.
		sdkFault bool
	}{
		{"the SDK's client", dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }), true},
		{"dynamo.NewClient", dynamo.NewClient(cfg, true), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			_, err := tt.client.PutItem(context.Background(), &dynamodb.PutItemInput{
				TableName: aws.String("t"),
				Item:      map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "k"}},
			})
			sent := requests.Load()
			switch {
			case tt.sdkFault && sent == 1 && err == nil:
				t.Errorf("one request, answered (%v): the SDK's client keeps its answers now; heldBodies (client.go) can go", err)
			case tt.sdkFault:
				t.Logf("the SDK's client sent the write %d times: %v", sent, err)
			case sent != 1 || err != nil:
				t.Errorf("the write was sent %d times: %v; want once, answered", sent, err)
			}
		})
	}
}
