// Package ssmparam reads SSM parameters: the functions' configuration document.
//
// It is apart from package config so that a function that reads no parameter (the event
// functions read only their environment) does not link the SSM client, whose package
// initialisation is part of every cold start.
package ssmparam

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Getter reads an SSM parameter; *ssm.Client is one.
type Getter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Reader reads parameters through an SSM client; it is a config.ParameterReader.
type Reader struct{ Client Getter }

// New returns a Reader of client.
func New(client Getter) Reader { return Reader{Client: client} }

// Parameter returns the value of the parameter of that name, decrypted.
func (r Reader) Parameter(ctx context.Context, name string) (string, error) {
	out, err := r.Client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("get parameter: %w", err)
	}
	if out.Parameter == nil {
		return "", fmt.Errorf("parameter %s has no value", name)
	}
	return aws.ToString(out.Parameter.Value), nil
}
