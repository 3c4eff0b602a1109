// Package stepfunctions starts and inspects the executions of a Step Functions state
// machine: the bridge saga's (bridge.Executions). Its errors are domain errors.
package stepfunctions

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/federation"
)

// API is the part of the Step Functions client it uses; *sfn.Client is one.
type API interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Machine is one state machine.
type Machine struct {
	api API
	arn string
}

var _ bridge.Executions = (*Machine)(nil)

// New returns the Machine with that ARN.
func New(api API, stateMachineARN string) *Machine { return &Machine{api: api, arn: stateMachineARN} }

// ARN implements bridge.Executions: an execution's ARN is its machine's, with
// ":execution:" for ":stateMachine:" and its name after.
func (m *Machine) ARN(name string) string {
	return strings.Replace(m.arn, ":stateMachine:", ":execution:", 1) + ":" + name
}

// Start implements bridge.Executions. Starting an execution that exists is not an error:
// Step Functions answers a repeat of a running one with the same ARN, and a finished
// one's name with ExecutionAlreadyExists; either way that transfer attempt has its one
// execution.
func (m *Machine) Start(ctx context.Context, name string, input []byte) (string, error) {
	out, err := m.api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(m.arn), Name: aws.String(name), Input: aws.String(string(input))})
	var exists *types.ExecutionAlreadyExists
	switch {
	case errors.As(err, &exists):
		return m.ARN(name), nil
	case err != nil:
		return "", federation.Wrap(federation.EUNAVAILABLE, fmt.Errorf("start execution %s: %w", name, err), "the saga could not start")
	}
	return aws.ToString(out.ExecutionArn), nil
}

// Running implements bridge.Executions.
func (m *Machine) Running(ctx context.Context, arn string) (bool, error) {
	out, err := m.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	var missing *types.ExecutionDoesNotExist
	switch {
	case errors.As(err, &missing):
		return false, federation.Errorf(federation.ENOTFOUND, "no execution %s", arn)
	case err != nil:
		return false, federation.Wrap(federation.EUNAVAILABLE, fmt.Errorf("describe execution %s: %w", arn, err), "Step Functions did not answer")
	}
	return out.Status == types.ExecutionStatusRunning, nil
}
