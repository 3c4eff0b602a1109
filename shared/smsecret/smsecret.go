// Package smsecret reads Secrets Manager secrets: the gateway's keys and its credentials
// at registries and token services.
//
// It is apart from package config so that a function that reads no secret does not link
// the Secrets Manager client, whose package initialisation is part of every cold start.
package smsecret

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Getter reads a secret; *secretsmanager.Client is one.
type Getter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Reader reads secrets through a Secrets Manager client; it is a config.SecretReader.
type Reader struct{ Client Getter }

// New returns a Reader of client.
func New(client Getter) Reader { return Reader{Client: client} }

// Secret returns the string value of the secret with that name or ARN.
func (r Reader) Secret(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errors.New("no secret is named (the template sets the variable)")
	}
	out, err := r.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", id, err)
	}
	if out.SecretString == nil || *out.SecretString == "" {
		return "", fmt.Errorf("secret %s has no string value", id)
	}
	return *out.SecretString, nil
}
