package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

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
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		req, err := DecodeRequest(body)
		if err != nil {
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

// readBody reads a JSON body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, federation.Errorf(federation.EINVALID, "send the body as Content-Type: application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, federation.Errorf(federation.ETOOLARGE, "the request body is over %d bytes", maxBody)
	}
	if err != nil {
		return nil, federation.Errorf(federation.EINVALID, "could not read the request body")
	}
	return body, nil
}

// DecodeRequest reads a transfer request strictly: one JSON object with the known fields
// only, amounts as strings. What is wrong is said in the API's words.
func DecodeRequest(body []byte) (bridge.Request, error) {
	var req bridge.Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return bridge.Request{}, federation.Errorf(federation.EINVALID, "%s", describe(err))
	}
	if dec.More() {
		return bridge.Request{}, federation.Errorf(federation.EINVALID, "the body has data after its JSON object")
	}
	return req, nil
}

// describe says what is wrong with a body in the API's words, not the parser's.
func describe(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		want := map[string]string{"string": "a string", "bridge.Deposit": "an object {registry, transaction_id}"}[typeErr.Type.String()]
		if want == "" {
			want = "another type"
		}
		return typeErr.Field + " must be " + want + " (amounts are decimal strings, e.g. \"25.0\")"
	case errors.As(err, &typeErr):
		return "the body must be a JSON object"
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is not valid JSON"
	case errors.Is(err, io.EOF):
		return "the body is empty: send {from, to, amount, deposit: {registry, transaction_id}}"
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + field + "; the fields are from, to, amount, deposit.registry and deposit.transaction_id"
	}
	return "the body is not the expected JSON object"
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
