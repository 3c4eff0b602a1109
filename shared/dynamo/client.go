package dynamo

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// NewClient returns a DynamoDB client for the SDK configuration. A local endpoint (the
// embedded emulator) sends no CRC32 checksum header, so response checksum validation is
// off for it, and only for it. Every request body is sent from a copy of its own
// (heldBodies).
func NewClient(cfg aws.Config, localEndpoint bool) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if localEndpoint {
			o.DisableValidateResponseChecksum = true
		}
		o.HTTPClient = heldBodies{o.HTTPClient}
	})
}

// heldBodies sends each request with a body of its own, held in memory, so that the SDK
// closing its body cannot tear down the connection while the answer is read.
//
// The SDK (smithy-go) closes a request's body as soon as the HTTP client returns the
// response headers, and its body, once closed, answers WriteTo with io.EOF. net/http's
// transport, having written a body of the declared length, copies it once more to check
// that nothing is left; when a busy machine delays that copy until after the answer came
// (the server had the whole request), the copy reaches the closed body, io.EOF comes back
// as a write error, and the transport closes the connection under the response being
// read: "failed to decode response body, ... use of closed network connection". The SDK
// retries that, so a conditional write DynamoDB had applied is sent again and fails its
// own condition: a first use of a credential read as a replay, a claim as taken by
// someone else. TestClientKeepsAnswersWhenTheSDKClosesTheBody reproduces it; the SDK's
// issue is aws/aws-sdk-go-v2#2737, whose fix only made the error retryable.
//
// A body held in memory is one the transport knows: it sends the end of the request with
// its final flush, after that check, so no answer can come before it, and the check reads
// a reader only the transport holds.
type heldBodies struct{ client dynamodb.HTTPClient }

// Do sends r with a copy of its body.
func (h heldBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return h.client.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	held := r.Clone(r.Context())
	held.Body, held.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	held.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return h.client.Do(held)
}
