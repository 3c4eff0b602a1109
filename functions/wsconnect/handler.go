package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/wsapi"
)

// Verifier verifies credentials; *identity.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, c federation.Credential) (federation.Identity, error)
}

// Connector records connections; *events.Service is one.
type Connector interface {
	Connect(ctx context.Context, id string, v events.Viewer) error
}

// Handler serves the WebSocket API's $connect route: it verifies the subscriber's
// credential (the Authorization header, or a bearer.<JWT> subprotocol) and records the
// connection with the verified subject. A refusal answers the handshake with a problem's
// status (401, 403), which API Gateway returns instead of upgrading.
func Handler(v Verifier, c Connector, operators []string, log *slog.Logger) func(context.Context, lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, req lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error) {
		id := req.RequestContext.ConnectionID
		cred, err := wsapi.Credential(req.Headers)
		if err != nil {
			return refuse(ctx, log, id, err), nil
		}
		who, err := v.Verify(ctx, cred)
		if err != nil {
			return refuse(ctx, log, id, err), nil
		}
		if caveat := identity.Caveat(cred, who); caveat != "" {
			return refuse(ctx, log, id, federation.Errorf(federation.EUNAUTHORIZED, "%s: it cannot subscribe", caveat)), nil
		}
		viewer := events.Viewer{Subject: who.Subject, Operator: slices.Contains(operators, who.Subject)}
		if err := c.Connect(ctx, id, viewer); err != nil {
			return refuse(ctx, log, id, err), nil
		}
		log.InfoContext(ctx, "connected", "connection", id, "subject", who.Subject, "operator", viewer.Operator)
		resp := lambdaevents.APIGatewayProxyResponse{StatusCode: http.StatusOK}
		if p := wsapi.AnswerSubprotocol(req.Headers); p != "" {
			resp.Headers = map[string]string{"Sec-WebSocket-Protocol": p}
		}
		return resp, nil
	}
}

func refuse(ctx context.Context, log *slog.Logger, id string, err error) lambdaevents.APIGatewayProxyResponse {
	code := federation.ErrorCode(err)
	status := apigw.StatusOf(code)
	if status >= 500 {
		log.ErrorContext(ctx, "connect", "connection", id, "error", err)
	} else {
		log.InfoContext(ctx, "refused", "connection", id, "reason", err.Error())
	}
	body, _ := json.Marshal(apigw.NewProblem(status, code, federation.ErrorMessage(err)))
	return lambdaevents.APIGatewayProxyResponse{StatusCode: status, Headers: map[string]string{"Content-Type": apigw.ProblemContentType}, Body: string(body)}
}
