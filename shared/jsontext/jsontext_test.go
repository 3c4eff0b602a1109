package jsontext_test

import (
	"testing"

	"github.com/federation-gateway/gateway/shared/jsontext"
)

func TestMarshalKeepsHTMLCharacters(t *testing.T) {
	got, err := jsontext.Marshal(map[string]string{"lane": "alpha->beta", "why": "a < b & c"})
	if want := `{"lane":"alpha->beta","why":"a < b & c"}`; err != nil || string(got) != want {
		t.Errorf("Marshal = %s, %v; want %s", got, err, want)
	}
	if _, err := jsontext.Marshal(func() {}); err == nil {
		t.Error("a value JSON cannot hold was encoded")
	}
}
