package config_test

import (
	"context"
	"strings"
	"testing"

	"github.com/federation-gateway/gateway/shared/config"
)

func TestAWS(t *testing.T) {
	cfg, err := config.AWS(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN",
		"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" || cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != "http://127.0.0.1:4566" {
		t.Errorf("cfg = %+v", cfg)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "SECRET" || creds.SessionToken != "TOKEN" {
		t.Errorf("credentials = %+v, %v", creds, err)
	}
	// The SDK's clients ask their configuration sources for AWS_ENDPOINT_URL_<SERVICE>.
	type endpointSource interface {
		GetServiceBaseEndpoint(context.Context, string) (string, bool, error)
	}
	src, ok := cfg.ConfigSources[0].(endpointSource)
	if !ok {
		t.Fatalf("config source %T does not resolve service endpoints", cfg.ConfigSources[0])
	}
	if u, found, _ := src.GetServiceBaseEndpoint(context.Background(), "DynamoDB"); !found || u != "http://127.0.0.1:8000" {
		t.Errorf("DynamoDB endpoint = %q, %v", u, found)
	}
	if _, found, _ := src.GetServiceBaseEndpoint(context.Background(), "SSM"); found {
		t.Error("an SSM endpoint was found where none is set")
	}

	// AWS_DEFAULT_REGION is the fallback; missing settings are all reported.
	if cfg, err := config.AWS(env(map[string]string{"AWS_DEFAULT_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})); err != nil || cfg.Region != "us-west-2" {
		t.Errorf("fallback region: %v %v", cfg.Region, err)
	}
	_, err = config.AWS(env(map[string]string{}))
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("empty environment: %v", err)
	}
}
