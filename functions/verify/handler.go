package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// maxBody bounds the request: a credential is a few KiB at most.
const maxBody = 64 << 10

// Verifier verifies credentials; *identity.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, c federation.Credential) (federation.Identity, error)
}

// Directory finds the agent record of a DID; *dynamo.Store is one.
type Directory interface {
	// Agent returns the record of did. Errors: ENOTFOUND.
	Agent(ctx context.Context, did string) (federation.Agent, error)
}

// request is the body of POST /api/v1/verify.
type request struct {
	Credential *federation.Credential `json:"credential"`
}

// answer is the result of a verification. A credential that does not verify is an answer
// too (verified false, with the reason), not an error: checking credentials is what this
// endpoint is for.
type answer struct {
	Verified    bool       `json:"verified"`
	Method      string     `json:"method"`
	Subject     string     `json:"subject"`
	TrustDomain string     `json:"trust_domain"`
	ExpiresAt   *time.Time `json:"expires_at"`
	// Agent is the directory's record of the subject, when the subject is a DID the
	// directory lists; null otherwise (SPIFFE IDs are not indexed yet).
	Agent *federation.Agent `json:"agent"`
	// Reason says why the credential did not verify, or what a verified one does not
	// prove; empty otherwise.
	Reason string `json:"reason"`
}

// Handler serves POST /api/v1/verify: the credential comes in the body
// ({"credential":{"type","token"}}, Content-Type application/json) or, when the body is
// empty, in the Authorization header (Bearer <JWT> or X509-SVID <chain>).
// Every verification is counted in Verifications by method and outcome (verified or
// refused), a refused one by reason too.
func Handler(v Verifier, dir Directory, log *slog.Logger, m *metrics.Recorder) http.Handler {
	mux := apigw.NewMux()
	mux.HandleFunc("POST /api/v1/verify", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		cred, err := readCredential(w, r)
		if err != nil {
			apigw.Error(w, r, log, err)
			return
		}
		id, err := v.Verify(ctx, cred)
		switch federation.ErrorCode(err) {
		case "":
		case federation.EUNAUTHORIZED:
			log.InfoContext(ctx, "verify", "verified", false, "reason", federation.ErrorMessage(err), "cause", err.Error())
			m.Emit(ctx, []metrics.Dim{{Name: metrics.DimMethod, Value: claimedMethod(cred)}, {Name: metrics.DimOutcome, Value: "refused"},
				{Name: metrics.DimReason, Value: federation.ErrorMessage(err)}}, metrics.Count(metrics.Verifications, 1))
			apigw.JSON(w, http.StatusOK, answer{Reason: federation.ErrorMessage(err)})
			return
		default:
			apigw.Error(w, r, log, err)
			return
		}
		a := answer{Verified: true, Method: id.Method, Subject: id.Subject, TrustDomain: id.TrustDomain, ExpiresAt: &id.ExpiresAt,
			Reason: identity.Caveat(cred, id)}
		if strings.HasPrefix(id.Subject, "did:") {
			// The credential is spent (its jti claimed): a directory failure must not turn
			// the verification into an error the caller could not retry.
			agent, err := dir.Agent(ctx, id.Subject)
			switch federation.ErrorCode(err) {
			case "":
				a.Agent = &agent
			case federation.ENOTFOUND:
			default:
				log.WarnContext(ctx, "verify: agent lookup failed", "subject", id.Subject, "error", err.Error())
			}
		}
		m.Emit(ctx, []metrics.Dim{{Name: metrics.DimMethod, Value: id.Method}, {Name: metrics.DimOutcome, Value: "verified"}},
			metrics.Count(metrics.Verifications, 1))
		log.InfoContext(ctx, "verify", "verified", true, "method", id.Method, "subject", id.Subject, "agent", a.Agent != nil)
		apigw.JSON(w, http.StatusOK, a)
	})
	return mux
}

// claimedMethod is the method a refused credential was presented for: its declared type
// when it is one the gateway knows (a caller's word, so never used as given), else jwt.
// The reasons a verification gives are a fixed set of short phrases.
func claimedMethod(c federation.Credential) string {
	switch c.Type {
	case identity.TypeX509SVID, identity.MethodJWTSVID, identity.MethodDIDKey, identity.MethodDIDWeb:
		return c.Type
	}
	return identity.TypeJWT
}

// readCredential decodes the body's credential or, when the body has none, reads the
// Authorization header's. Errors: EINVALID, EMEDIATYPE, ETOOLARGE.
func readCredential(w http.ResponseWriter, r *http.Request) (federation.Credential, error) {
	body, err := apigw.ReadBody(w, r, maxBody)
	if err != nil {
		return federation.Credential{}, err
	}
	var req request
	if len(strings.TrimSpace(string(body))) > 0 {
		if !apigw.IsJSON(r.Header.Get("Content-Type")) {
			return federation.Credential{}, federation.Errorf(federation.EMEDIATYPE, "send the body as JSON, with Content-Type: application/json")
		}
		if err := apigw.Unmarshal(body, &req); err != nil {
			return federation.Credential{}, err
		}
	}
	if req.Credential == nil {
		if r.Header.Get("Authorization") == "" {
			return federation.Credential{}, federation.Errorf(federation.EINVALID,
				`no credential: send {"credential":{"type":"...","token":"..."}} or an Authorization: Bearer token`)
		}
		cred, err := federation.ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			// Here the credential is what is asked about, not what authorizes the call.
			return federation.Credential{}, federation.Errorf(federation.EINVALID, "%s", federation.ErrorMessage(err))
		}
		return cred, nil
	}
	if strings.TrimSpace(req.Credential.Token) == "" {
		return federation.Credential{}, federation.Errorf(federation.EINVALID, "credential.token is required")
	}
	return *req.Credential, nil
}
