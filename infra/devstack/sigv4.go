package devstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The local credentials every function and tool of the dev stack signs with.
const (
	localAccessKey = "test"
	localSecretKey = "test"
)

// checkSignature checks a request to the @connections API as IAM checks API Gateway's:
// signed with SigV4 for the service execute-api, within 15 minutes of now, by the local
// credentials. The signature is computed again and compared. It returns API Gateway's
// message of a refusal, or "" when the request is signed.
func checkSignature(r *http.Request, body []byte, now time.Time) string {
	auth := r.Header.Get("Authorization")
	alg, rest, ok := strings.Cut(auth, " ")
	if !ok || alg != "AWS4-HMAC-SHA256" {
		return "Missing Authentication Token"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters"
	}
	if scope[0] != localAccessKey {
		return "The security token included in the request is invalid."
	}
	if scope[3] != "execute-api" {
		return "Credential should be scoped to correct service: 'execute-api'."
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
	}
	if d := now.Sub(at); d > 15*time.Minute || d < -15*time.Minute {
		return "Signature expired"
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return "Missing Authentication Token"
	}
	again.Host, again.ContentLength = r.Host, r.ContentLength
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	creds := aws.Credentials{AccessKeyID: localAccessKey, SecretAccessKey: localSecretKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hash, "execute-api", scope[2], at); err != nil {
		return "Missing Authentication Token"
	}
	if !strings.Contains(again.Header.Get("Authorization"), "Signature="+fields["Signature"]) {
		return "The request signature we calculated does not match the signature you provided."
	}
	return ""
}
