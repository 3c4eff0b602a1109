package devstack

import (
	"encoding/json"
	"testing"
)

func TestMatch(t *testing.T) {
	api := newHTTPAPI(&Template{Functions: []Function{
		{LogicalID: "Bridge", Routes: []Route{{"POST", "/api/v1/bridge"}, {"GET", "/api/v1/bridge/{id}"}}},
		{LogicalID: "Static", Routes: []Route{{"GET", "/api/v1/bridge/latest"}}},
		{LogicalID: "Files", Routes: []Route{{"ANY", "/files/{proxy+}"}}},
	}}, nil, nil)
	tests := []struct {
		method, path, function string
		params                 map[string]string
		allowed                []string
	}{
		{"POST", "/api/v1/bridge", "Bridge", map[string]string{}, nil},
		{"GET", "/api/v1/bridge/tx-1", "Bridge", map[string]string{"id": "tx-1"}, nil},
		{"GET", "/api/v1/bridge/latest", "Static", map[string]string{}, nil}, // literal beats variable
		{"DELETE", "/api/v1/bridge/tx-1", "", nil, []string{"GET"}},
		{"GET", "/api/v1/bridge", "", nil, []string{"POST"}},
		{"GET", "/api/v1/bridge/tx-1/extra", "", nil, nil},
		{"GET", "/api/v1/bridge/", "", nil, []string{"POST"}},
		{"PATCH", "/files/a/b", "Files", map[string]string{"proxy": "a/b"}, nil},
		{"GET", "/files", "", nil, nil},
		{"GET", "/", "", nil, nil},
	}
	for _, tt := range tests {
		r, params, allowed := api.match(tt.method, tt.path)
		got := ""
		if r != nil {
			got = r.function
		}
		if got != tt.function || len(params) != len(tt.params) || len(allowed) != len(tt.allowed) {
			t.Errorf("%s %s: %q %v %v; want %q %v %v", tt.method, tt.path, got, params, allowed, tt.function, tt.params, tt.allowed)
			continue
		}
		for k, v := range tt.params {
			if params[k] != v {
				t.Errorf("%s %s: param %s = %q, want %q", tt.method, tt.path, k, params[k], v)
			}
		}
	}
}

// FuzzFromResponse feeds arbitrary function output to the response decoder: it must never
// panic, and what it accepts must be a valid HTTP status.
func FuzzFromResponse(f *testing.F) {
	for _, seed := range []string{
		`{"statusCode":200,"headers":{"a":"b"},"body":"x"}`,
		`{"statusCode":404,"isBase64Encoded":true,"body":"AAE="}`,
		`{"statusCode":"200"}`,
		`{"statusCode":99999}`,
		`"just a string"`,
		`[1,2,3]`,
		`null`,
		`not json`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		resp, err := fromResponse(out)
		if err != nil {
			return
		}
		if resp.StatusCode < 100 || resp.StatusCode > 599 {
			t.Fatalf("accepted status %d from %q", resp.StatusCode, out)
		}
		if !json.Valid(out) {
			t.Fatalf("accepted invalid JSON %q", out)
		}
	})
}
