package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Bridger accepts and shows transfers; *bridge.Bridge is one.
type Bridger interface {
	Submit(ctx context.Context, req bridge.Request, cred federation.Credential, key string) (bridge.Transfer, bool, error)
	Get(ctx context.Context, id string, cred federation.Credential) (bridge.Transfer, error)
}

// maxBody bounds a request body: a transfer request is a few hundred bytes.
const maxBody = 16 << 10

// Handler serves POST /api/v1/bridge and GET /api/v1/bridge/{id}.
func Handler(b Bridger, log *slog.Logger) http.Handler {
	mux := apigw.NewMux()
	mux.HandleFunc("POST /api/v1/bridge", func(w http.ResponseWriter, r *http.Request) {
		cred, err := federation.ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		var req bridge.Request
		if err := apigw.DecodeJSON(w, r, maxBody, &req); err != nil {
			writeError(w, r, log, err)
			return
		}
		t, created, err := b.Submit(r.Context(), req, cred, r.Header.Get("Idempotency-Key"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/bridge/"+t.ID)
		status := http.StatusAccepted
		if !created {
			status = http.StatusOK // a repeat: the transfer it made
		}
		apigw.JSON(w, status, t.View())
	})
	mux.HandleFunc("GET /api/v1/bridge/{id}", func(w http.ResponseWriter, r *http.Request) {
		cred, err := federation.ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		t, err := b.Get(r.Context(), r.PathValue("id"), cred)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		apigw.JSON(w, http.StatusOK, t.View())
	})
	return mux
}

// DecodeRequest reads a transfer request as the handler does: strictly, one JSON object
// with the known fields only (amounts are decimal strings), what is wrong said in the
// API's words. It is the fuzz target's entry.
func DecodeRequest(body []byte) (bridge.Request, error) {
	var req bridge.Request
	err := apigw.Unmarshal(body, &req)
	return req, err
}

// writeError answers err as a problem, with the headers its status asks for.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	switch federation.ErrorCode(err) {
	case federation.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer realm="federation-gateway"`)
	case federation.ERATELIMITED:
		var rl *bridge.RateLimited
		secs := 1
		if errors.As(err, &rl) {
			secs = max(1, int(rl.RetryAfter.Seconds()))
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	apigw.Error(w, r, log, err)
}
