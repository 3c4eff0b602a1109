// Package delivery is the gateway's A2A adapter, both ways: a Deliverer sends a routed
// message to the target agent's A2A v1.0 JSON-RPC endpoint with the official a2a-go
// client, signed by the gateway; NewA2AHandler serves the gateway itself as an A2A agent
// whose SendMessage routes; GatewayCard is that agent's card.
//
// # What a target agent receives
//
// A SendMessage (header A2A-Version: 1.0) whose message has the role user, messageId
// equal to the federation message ID (a repeat carries the same one), and either one
// data part with the payload (a message routed with POST /api/v1/route: a payload that
// is not a JSON object arrives as {"value": <payload>}, with metadata
// federation.payload_wrapped true) or, for a message sent to the gateway's own A2A
// endpoint, the sender's parts as it sent them, text, data and files alike (metadata
// federation.payload_form "parts"); and this metadata:
//
//	federation.message_id       the federation message ID
//	federation.from             the sender's DID
//	federation.to               the target's DID
//	federation.source_registry  the sender's registry, as the directory holds it
//	federation.target_registry  the target's registry
//	federation.gateway          the gateway's ID
//	federation.verified_by      {"method": "jwt-svid|x509-svid|did:key|did:web", "subject": "<SPIFFE ID or DID>"}, when verified
//	federation.signature        a compact JWS (below)
//
// # The signature
//
// federation.signature is a compact JWS, header {"alg":"EdDSA","kid":<RFC 7638 SHA-256
// thumbprint of the gateway's Ed25519 key>,"typ":"federation+jwt"}, over the claims
//
//	{"iss": <gateway ID>, "iat": <now>, "exp": <now + 5 min>, "jti": <message ID>,
//	 "msg_hash": <hash>, "verified_by": {"method", "subject"} (when verified)}
//
// where hash is base64url (no padding) of the SHA-256 of the RFC 8785 (JCS) canonical
// JSON of
//
//	{"message_id", "from", "to", "source_registry", "target_registry", "payload"}
//
// with the payload as the sender sent it (unwrapped), absent strings as ""; for a
// message of parts, the payload is the JSON list of its parts (A2A v1.0 JSON) and the
// object has one more member, "payload_form": "parts". The public
// keys are the JWK set at GET <gateway>/.well-known/jwks.json (Signer.JWKS). A target
// checks that a message came through the gateway unchanged with:
//
//	m, token, err := delivery.ReadForwarded(execCtx.Message) // metadata + data part
//	err = delivery.VerifyForwarded(jwks, token, m)           // signature, typ, times, jti, msg_hash, verified_by
//
// A target in another language does the same: verify the JWS with the JWKS key named
// by kid (EdDSA only, typ federation+jwt, iat/exp with a minute of leeway), then compare
// jti with the messageId and msg_hash with its own hash of the message. Numbers in the
// payload hash as RFC 8785 writes them (IEEE 754 doubles): re-encoding the payload does
// not change the hash, but an integer beyond 2^53 is only as exact as a double.
package delivery
