package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/federation-gateway/gateway/shared/apigw"
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

// DecodeRequest reads an operator request strictly: one JSON object of known fields, what
// is wrong said in the API's words.
func DecodeRequest(raw []byte) (bridge.OperatorRequest, error) {
	var req bridge.OperatorRequest
	err := apigw.Unmarshal(raw, &req)
	return req, err
}
