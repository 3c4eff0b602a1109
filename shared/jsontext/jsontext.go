// Package jsontext encodes JSON for programs to read, not for HTML pages: the encoding of
// the event streams' frames and of the delivery summaries.
package jsontext

import (
	"bytes"
	"encoding/json"
)

// Marshal is json.Marshal without HTML escaping: a lane's "alpha->beta" or a reason's "<"
// stays as it is instead of turning into six bytes such as \u003e.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
