package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Operator runs operator actions; *bridge.Bridge is one.
type Operator interface {
	Operate(ctx context.Context, req bridge.OperatorRequest) (bridge.OperatorResult, error)
}

// Handler decodes an operator's request strictly and runs it. A refused request is a
// Lambda error whose type says why (OperatorInvalid, OperatorNotFound, OperatorConflict,
// OperatorUnavailable, OperatorFailed) and whose message is safe to show.
func Handler(op Operator) func(context.Context, json.RawMessage) (bridge.OperatorResult, error) {
	return func(ctx context.Context, raw json.RawMessage) (bridge.OperatorResult, error) {
		req, err := DecodeRequest(raw)
		if err == nil {
			var res bridge.OperatorResult
			if res, err = op.Operate(ctx, req); err == nil {
				return res, nil
			}
		}
		name := map[string]string{federation.EINVALID: "OperatorInvalid", federation.ENOTFOUND: "OperatorNotFound",
			federation.ECONFLICT: "OperatorConflict", federation.EUNAVAILABLE: "OperatorUnavailable"}[federation.ErrorCode(err)]
		if name == "" {
			name = "OperatorFailed"
		}
		return bridge.OperatorResult{}, messages.InvokeResponse_Error{Type: name, Message: federation.ErrorMessage(err)}
	}
}

// DecodeRequest reads an operator request: one JSON object of known fields.
func DecodeRequest(raw []byte) (bridge.OperatorRequest, error) {
	var req bridge.OperatorRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		msg := "the request is not a JSON object of action, request_id, operator, reason, registry, amount, lane, limits, transfer_id, resolution, transaction_id, limit"
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			msg = "unknown field " + f + "; " + msg
		} else if errors.Is(err, io.EOF) {
			msg = "an empty request; " + msg
		}
		return req, federation.Errorf(federation.EINVALID, "%s", msg)
	}
	if dec.More() {
		return req, federation.Errorf(federation.EINVALID, "data after the request's JSON object")
	}
	return req, nil
}
