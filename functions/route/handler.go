package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/routing"
)

// Router routes and broadcasts; *routing.Router is one.
type Router interface {
	Route(ctx context.Context, req federation.RouteRequest, cred federation.Credential) (federation.RouteResult, error)
	Broadcast(ctx context.Context, d routing.Discoverer, req routing.BroadcastRequest, cred federation.Credential) (routing.BroadcastResult, error)
}

// maxBody bounds a request body: the payload limit and room for the envelope. A larger
// body is refused before it is read whole.
const maxBody = routing.MaxPayload + 64<<10

// Gateway is what the route function serves besides routing: the gateway's A2A face.
type Gateway struct {
	A2A  http.Handler // JSON-RPC at /a2a
	Card []byte       // the A2A agent card
	JWKS []byte       // the public keys of the gateway's signatures
}

// Handler serves POST /api/v1/route, POST /api/v1/broadcast, POST /a2a and the gateway's
// agent card and keys.
func Handler(r Router, d routing.Discoverer, g Gateway, log *slog.Logger) http.Handler {
	mux := apigw.NewMux()
	mux.HandleFunc("POST /api/v1/route", func(w http.ResponseWriter, req *http.Request) {
		var body federation.RouteRequest
		cred, err := readRequest(w, req, &body)
		if err == nil {
			var res federation.RouteResult
			if res, err = r.Route(req.Context(), body, cred); err == nil {
				apigw.JSON(w, http.StatusOK, res)
				return
			}
		}
		writeError(w, req, log, err)
	})
	mux.HandleFunc("POST /api/v1/broadcast", func(w http.ResponseWriter, req *http.Request) {
		var body routing.BroadcastRequest
		cred, err := readRequest(w, req, &body)
		if err == nil {
			var res routing.BroadcastResult
			if res, err = r.Broadcast(req.Context(), d, body, cred); err == nil {
				apigw.JSON(w, http.StatusOK, res)
				return
			}
		}
		writeError(w, req, log, err)
	})
	mux.Handle("POST /a2a", g.A2A)
	mux.HandleFunc("GET /.well-known/agent-card.json", raw(g.Card))
	mux.HandleFunc("GET /.well-known/jwks.json", raw(g.JWKS))
	return mux
}

func raw(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}
}

// readRequest decodes the JSON body, of at most maxBody bytes, strictly into v, then
// reads the credential of the Authorization header.
func readRequest(w http.ResponseWriter, req *http.Request, v any) (federation.Credential, error) {
	if err := apigw.DecodeJSON(w, req, maxBody, v); err != nil {
		return federation.Credential{}, err
	}
	return federation.ParseAuthorization(req.Header.Get("Authorization"))
}

// writeError answers err as a problem, with the headers its status asks for.
func writeError(w http.ResponseWriter, req *http.Request, log *slog.Logger, err error) {
	switch federation.ErrorCode(err) {
	case federation.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer realm="federation-gateway"`)
	case federation.ERATELIMITED:
		w.Header().Set("Retry-After", strconv.Itoa(routing.RetryAfter(time.Now())))
	}
	apigw.Error(w, req, log, err)
}
