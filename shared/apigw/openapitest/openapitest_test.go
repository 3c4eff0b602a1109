package openapitest_test

import (
	"testing"

	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
)

// The document loads and is a valid OpenAPI 3.1 document.
func TestDocument(t *testing.T) {
	openapitest.New(t)
}
