package delivery

import (
	"encoding/json"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
)

// SummarizeResult decodes a JSON-RPC SendMessage result as a2a-go's client does and
// returns what Deliver would: the fuzz target's way in without a server.
func SummarizeResult(raw []byte) (Outcome, error) {
	var sr a2a.StreamResponse
	if err := json.Unmarshal(raw, &sr); err != nil {
		return Outcome{}, err
	}
	res, _ := sr.Event.(a2a.SendMessageResult)
	return outcome(res, "did:example:target")
}

// VerifyForwardedAt is VerifyForwarded at a given time.
func VerifyForwardedAt(jwks []byte, token string, m Message, now time.Time) error {
	return verifyForwarded(jwks, token, m, now)
}
