// Package wsapi is the adapter of API Gateway's WebSocket API: its @connections
// management API as an events.Poster, and the credential a subscriber presents when it
// connects. API Gateway errors become domain errors here.
package wsapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Connections is the @connections API of one WebSocket API stage.
type Connections struct {
	client *apigatewaymanagementapi.Client
}

var _ events.Poster = Connections{}

// NewConnections returns the @connections API at url, the stage's URL
// (https://<api>.execute-api.<region>.amazonaws.com/<stage>, the template's
// CONNECTIONS_URL; the local dev stack points it at its own server). Its client signs
// with the function's credentials and retries throttled posts with the SDK's backoff.
func NewConnections(cfg aws.Config, url string) Connections {
	return Connections{client: apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(url)
	})}
}

// Post implements events.Poster with PostToConnection. Errors: events.ErrGone for a
// connection that is gone (410); ETOOLARGE; EUNAVAILABLE for anything else.
func (c Connections) Post(ctx context.Context, id string, data []byte) error {
	_, err := c.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data})
	return translate(err, "post to")
}

// Close implements events.Poster with DeleteConnection. A connection that is gone
// already is closed.
func (c Connections) Close(ctx context.Context, id string) error {
	_, err := c.client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
	if err = translate(err, "close"); errors.Is(err, events.ErrGone) {
		return nil
	}
	return err
}

func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var gone *types.GoneException
	if errors.As(err, &gone) {
		return fmt.Errorf("%s connection: %w", what, events.ErrGone)
	}
	var tooLarge *types.PayloadTooLargeException
	if errors.As(err, &tooLarge) {
		return federation.Wrap(federation.ETOOLARGE, err, "the frame is larger than a connection takes")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ForbiddenException" {
		return federation.Wrap(federation.EINTERNAL, err, "")
	}
	return federation.Wrap(federation.EUNAVAILABLE, err, "the WebSocket API is unavailable")
}

// Subprotocol is the WebSocket subprotocol of the federation's event streams. A browser,
// which cannot set the Authorization header of a WebSocket handshake, offers it beside its
// credential as a second subprotocol:
//
//	Sec-WebSocket-Protocol: federation-events.v1, bearer.<JWT>
//
// and the gateway answers with federation-events.v1 only, so the credential is never
// echoed.
const (
	Subprotocol    = "federation-events.v1"
	BearerProtocol = "bearer."
)

// Credential reads a subscriber's credential from the handshake's headers: the
// Authorization header (Bearer or X509-SVID), else a bearer.<JWT> subprotocol offered with
// Subprotocol. Header names are matched case-insensitively: API Gateway passes them as the
// client sent them. Errors: EUNAUTHORIZED.
func Credential(headers map[string]string) (federation.Credential, error) {
	if h := header(headers, "Authorization"); h != "" {
		return federation.ParseAuthorization(h)
	}
	offered := strings.Split(header(headers, "Sec-WebSocket-Protocol"), ",")
	var token string
	ours := false
	for _, p := range offered {
		p = strings.TrimSpace(p)
		if t, ok := strings.CutPrefix(p, BearerProtocol); ok && t != "" {
			token = t
		}
		ours = ours || p == Subprotocol
	}
	switch {
	case token == "":
		return federation.Credential{}, federation.Errorf(federation.EUNAUTHORIZED,
			"no credential: send Authorization: Bearer <JWT>, or offer the subprotocols %s and %s<JWT>", Subprotocol, BearerProtocol)
	case !ours:
		return federation.Credential{}, federation.Errorf(federation.EUNAUTHORIZED,
			"a credential in Sec-WebSocket-Protocol comes with the subprotocol %s, which the gateway answers", Subprotocol)
	}
	return federation.Credential{Type: "jwt", Token: token}, nil
}

// AnswerSubprotocol returns the Sec-WebSocket-Protocol the gateway answers a handshake
// with: Subprotocol when the client offered it, else none.
func AnswerSubprotocol(headers map[string]string) string {
	for _, p := range strings.Split(header(headers, "Sec-WebSocket-Protocol"), ",") {
		if strings.TrimSpace(p) == Subprotocol {
			return Subprotocol
		}
	}
	return ""
}

func header(headers map[string]string, name string) string {
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
