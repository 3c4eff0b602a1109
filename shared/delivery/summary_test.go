package delivery_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/federation-gateway/gateway/shared/delivery"
)

func TestSummaryBounds(t *testing.T) {
	longText := strings.Repeat("é", delivery.MaxSummaryBytes) // two bytes each
	bigData := `{"blob":"` + strings.Repeat("x", delivery.MaxSummaryBytes) + `"}`
	bigMeta := `{"notes":"` + strings.Repeat("m", 3000) + `"}`
	tests := []struct {
		name   string
		result string
		want   []string
		not    []string
	}{
		{"long text is cut on a rune", `{"message":{"messageId":"m","parts":[{"text":"` + longText + `"},{"text":"next"}]}}`,
			[]string{`"truncated":true`}, []string{`"text":"next"`, "\uFFFD"}},
		{"large data is left out, its size kept", `{"message":{"messageId":"m","parts":[{"data":` + bigData + `},{"text":"small"}]}}`,
			[]string{`"data_bytes":16395`, `"text":"small"`, `"truncated":true`}, []string{`"blob"`}},
		{"large metadata is left out", `{"message":{"messageId":"m","parts":[{"text":"a"}],"metadata":` + bigMeta + `}}`,
			[]string{`"text":"a"`, `"truncated":true`}, []string{`"notes"`}},
		{"files and raw bytes are described, not copied", `{"message":{"messageId":"m","parts":[{"url":"https://f.example/a.pdf","mediaType":"application/pdf","filename":"a.pdf"},{"raw":"AAECAw=="}]}}`,
			[]string{`"url":"https://f.example/a.pdf"`, `"media_type":"application/pdf"`, `"filename":"a.pdf"`, `"raw_bytes":4`}, []string{`"truncated"`}},
		{"task states in lower case", `{"task":{"id":"t","status":{"state":"TASK_STATE_INPUT_REQUIRED","message":{"parts":[{"text":"which city?"}]}}}}`,
			[]string{`"state":"input_required"`, `"status_message":[{"text":"which city?"}]`}, nil},
		{"no HTML escaping", `{"message":{"messageId":"m","parts":[{"text":"a<b & c>d"}]}}`, []string{`"text":"a<b & c>d"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := delivery.SummarizeResult([]byte(tt.result))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(o.Summary) || len(o.Summary) > delivery.MaxSummaryBytes+4096 {
				t.Fatalf("summary of %d bytes", len(o.Summary))
			}
			for _, w := range tt.want {
				if !strings.Contains(string(o.Summary), w) {
					t.Errorf("summary lacks %s: %.300s", w, o.Summary)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(string(o.Summary), n) {
					t.Errorf("summary has %s: %.300s", n, o.Summary)
				}
			}
		})
	}
}
