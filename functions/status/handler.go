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

// Handler serves GET /api/v1/status.
func Handler(r Reporter, log *slog.Logger) http.Handler {
	mux := apigw.NewMux()
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
