// Package apigw adapts net/http handlers to API Gateway HTTP API (payload 2.0) Lambda
// events, and writes the gateway's answers: JSON, and errors as RFC 9457
// application/problem+json.
package apigw

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
)

// ProblemContentType is the media type of error answers.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document, with the domain error code as an extension.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Code     string `json:"code"`
	Instance string `json:"instance,omitempty"`
}

// statusOf is the one map from domain error codes to HTTP statuses.
var statusOf = map[string]int{
	federation.EINVALID:      http.StatusBadRequest,
	federation.EUNAUTHORIZED: http.StatusUnauthorized,
	federation.EFORBIDDEN:    http.StatusForbidden,
	federation.ENOTFOUND:     http.StatusNotFound,
	federation.ECONFLICT:     http.StatusConflict,
	federation.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	federation.EMEDIATYPE:    http.StatusUnsupportedMediaType,
	federation.ERATELIMITED:  http.StatusTooManyRequests,
	federation.ELOCKED:       http.StatusLocked,
	federation.EUNACCEPTABLE: http.StatusUnprocessableEntity,
	federation.EUNAVAILABLE:  http.StatusBadGateway,
	federation.EINTERNAL:     http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of a domain error code (500 for an unknown one).
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// NewProblem returns the problem document for a status, code and detail.
func NewProblem(status int, code, detail string) Problem {
	return Problem{
		Type:   "https://federation-gateway.dev/problems/" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
}

// Error answers err as a problem. Internal errors are logged with their cause and shown
// to the caller only as a generic message; every problem's instance is the request's
// correlation ID (the request ID without one), for the caller to quote.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := federation.ErrorCode(err)
	status := StatusOf(code)
	p := NewProblem(status, code, federation.ErrorMessage(err))
	p.Instance = correlation.Value(r.Context())
	if p.Instance == "" {
		p.Instance = logs.RequestID(r.Context())
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "code", code, "error", err.Error())
	} else {
		log.InfoContext(r.Context(), "request refused", "code", code, "error", err.Error())
	}
	WriteProblem(w, p)
}

// JSON answers v as JSON with the status.
func JSON(w http.ResponseWriter, status int, v any) {
	// No HTML escaping: an API answer is not HTML, and "alpha->beta" should read as such.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		WriteProblem(w, NewProblem(http.StatusInternalServerError, federation.EINTERNAL, "An internal error occurred."))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}
