// Package docs holds the documents of the repository that the gateway serves or its tests
// read: the OpenAPI 3.1 description of the HTTP API (openapi.json), which the status
// function serves at GET /api/v1/openapi.json and every handler test validates its
// requests and responses against.
package docs

import _ "embed" // for go:embed

//go:embed openapi.json
var openapi string

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API.
func OpenAPI() []byte { return []byte(openapi) }
