package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Reporter builds the status report; *directory.Reporter is one.
type Reporter interface {
	Status(ctx context.Context) (federation.Status, error)
}

// Handler serves GET /api/v1/status, and GET /api/v1/openapi.json: the OpenAPI document
// of the HTTP API, openapi.
func Handler(r Reporter, openapi []byte, log *slog.Logger) http.Handler {
	mux := apigw.NewMux()
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openapi)
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, req *http.Request) {
		s, err := r.Status(req.Context())
		if err != nil {
			apigw.Error(w, req, log, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		apigw.JSON(w, http.StatusOK, s)
	})
	return mux
}
