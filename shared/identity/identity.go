// Package identity verifies the credentials agents present across trust boundaries: SPIFFE
// JWT-SVIDs and X.509-SVIDs of the configured trust domains, and JWTs signed by did:key and
// did:web identities (docs/architecture.md, "Security model"). The HTTP that resolving
// a did:web or refreshing a SPIFFE bundle takes lives in the identityhttp adapter, behind
// the DIDResolver and BundleFetcher interfaces.
//
// A verified credential becomes a federation.Identity:
//
//	method     subject                        trust domain
//	jwt-svid   spiffe://td/path (the sub)     td
//	x509-svid  spiffe://td/path (the URI SAN) td
//	did:key    did:key:z6Mk... (the iss)      "did:key": the key is its own authority
//	did:web    did:web:host[:path] (the iss)  host, with its port when it has one
//
// Every JWT must name the gateway in aud, carry exp, be within its validity window (with a
// bounded clock skew) and a bounded lifetime, and is accepted once: its jti is claimed
// until it expires. A failed verification is an EUNAUTHORIZED error whose message is a
// short reason that is safe to show the caller ("expired", "wrong audience", ...); the
// cause, when there is one, is kept for the log.
package identity

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Verification methods: the Method of a verified federation.Identity.
const (
	MethodJWTSVID  = "jwt-svid"
	MethodX509SVID = "x509-svid"
	MethodDIDKey   = "did:key"
	MethodDIDWeb   = "did:web"
)

// Credential types a caller may declare. "jwt" (or none) accepts a JWT of any method; a
// JWT method's name accepts only that method.
const (
	TypeJWT      = "jwt"
	TypeX509SVID = "x509-svid"
)

// Defaults of the zero values of Options.
const (
	DefaultMaxSkew     = 60 * time.Second
	DefaultMaxLifetime = time.Hour
	DefaultDIDCacheTTL = 5 * time.Minute
)

// MaxTokenSize bounds a credential's token: far above any real JWT or SVID chain, far
// below what would make parsing one costly.
const MaxTokenSize = 48 << 10

// ReplayGuard remembers the JWT IDs already accepted.
type ReplayGuard interface {
	// Claim records key as used until the given time. Errors: ECONFLICT when key is
	// already claimed and its claim has not expired; EUNAVAILABLE, EINTERNAL.
	Claim(ctx context.Context, key string, until time.Time) error
}

// Options are a Verifier's dependencies and limits.
type Options struct {
	// Audience is the gateway's ID (config Gateway.ID): every JWT must name it in aud.
	Audience string
	// Bundles gives the SPIFFE bundle of each configured trust domain. Nil accepts no
	// SVID.
	Bundles BundleSource
	// Replay claims JWT IDs. Required.
	Replay ReplayGuard
	// DIDs resolves did:web identifiers (identityhttp.NewDIDResolver, over a client of the
	// outbound Identifiers policy). Nil accepts no did:web credential.
	DIDs DIDResolver
	// Clock returns the current time; nil means time.Now. go-spiffe checks a JWT-SVID
	// against the system clock as well, so a clock far from it refuses every JWT-SVID.
	Clock func() time.Time
	// MaxSkew is the clock skew tolerated on exp, nbf and iat (default 60 s).
	MaxSkew time.Duration
	// MaxLifetime is the longest exp − iat accepted (default 1 h): a stolen token is
	// useful for at most that long.
	MaxLifetime time.Duration
	// DIDCacheTTL is how long a resolved did:web document is reused (default 5 min).
	DIDCacheTTL time.Duration
}

// Verifier verifies credentials. It is safe for concurrent use.
type Verifier struct {
	audience    string
	bundles     BundleSource
	replay      ReplayGuard
	dids        *didCache
	now         func() time.Time
	skew        time.Duration
	maxLifetime time.Duration
}

// NewVerifier returns a Verifier with the options' dependencies.
func NewVerifier(opts Options) (*Verifier, error) {
	switch {
	case strings.TrimSpace(opts.Audience) == "":
		return nil, errors.New("identity: an audience (the gateway ID) is required")
	case opts.Replay == nil:
		return nil, errors.New("identity: a replay guard is required")
	case opts.MaxSkew < 0 || opts.MaxLifetime < 0 || opts.DIDCacheTTL < 0:
		return nil, errors.New("identity: negative skew, lifetime or cache TTL")
	}
	v := &Verifier{
		audience: opts.Audience, bundles: opts.Bundles, replay: opts.Replay, now: opts.Clock,
		skew: opts.MaxSkew, maxLifetime: opts.MaxLifetime,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew == 0 {
		v.skew = DefaultMaxSkew
	}
	if v.maxLifetime == 0 {
		v.maxLifetime = DefaultMaxLifetime
	}
	if opts.DIDs != nil {
		ttl := opts.DIDCacheTTL
		if ttl == 0 {
			ttl = DefaultDIDCacheTTL
		}
		v.dids = newDIDCache(opts.DIDs, ttl, v.now)
	}
	return v, nil
}

// Verify verifies a credential and returns who presented it. Errors: EUNAUTHORIZED with a
// caller-safe reason when the credential does not verify; EINVALID when it is not a
// credential at all (an unknown type, no token); EUNAVAILABLE or EINTERNAL when a
// dependency (the table) fails, in which case the credential may be tried again.
func (v *Verifier) Verify(ctx context.Context, c federation.Credential) (federation.Identity, error) {
	token := strings.TrimSpace(c.Token)
	switch {
	case token == "":
		return federation.Identity{}, federation.Errorf(federation.EINVALID, "the credential has no token")
	case len(token) > MaxTokenSize:
		return federation.Identity{}, deny("token too large", nil)
	}
	switch c.Type {
	case "", TypeJWT:
		return v.verifyJWT(ctx, token, "")
	case MethodJWTSVID, MethodDIDKey, MethodDIDWeb:
		return v.verifyJWT(ctx, token, c.Type)
	case TypeX509SVID:
		return v.verifyX509(ctx, token)
	default:
		return federation.Identity{}, federation.Errorf(federation.EINVALID,
			"credential type %q is not supported; want jwt, jwt-svid, did:key, did:web or x509-svid", truncate(c.Type, 40))
	}
}

// Replay is the claim a verified credential's replay key needs before the credential is
// acted on: its key, accepted once, and until when the claim must last. VerifyUnclaimed
// returns it unmade, for a caller that makes it in a write of its own (routing claims it
// in the same transaction that admits the message). A zero Replay (a bare X.509 chain)
// has nothing to claim.
type Replay struct {
	Key   string
	Until time.Time
}

// VerifyUnclaimed verifies c as Verify does, but leaves its replay key unclaimed and
// returns it: the caller must claim it (ReplayGuard.Claim, or a write that makes the
// same conditional claim) before it acts on the credential or answers the request, and
// must treat the key's claim failing as "replayed jti". Errors: as Verify's.
func (v *Verifier) VerifyUnclaimed(ctx context.Context, c federation.Credential) (federation.Identity, Replay, error) {
	deferred := &deferredGuard{}
	w := *v // a shallow copy: the same caches and sources, another replay guard
	w.replay = deferred
	id, err := w.Verify(ctx, c)
	if err != nil {
		return federation.Identity{}, Replay{}, err
	}
	return id, deferred.claim, nil
}

// deferredGuard records the claim a verification would make instead of making it.
type deferredGuard struct{ claim Replay }

func (g *deferredGuard) Claim(_ context.Context, key string, until time.Time) error {
	g.claim = Replay{Key: key, Until: until}
	return nil
}

// deny is a verification failure: reason is shown to the caller, cause only logged.
func deny(reason string, cause error) error {
	if cause == nil {
		return federation.Errorf(federation.EUNAUTHORIZED, "%s", reason)
	}
	return federation.Wrap(federation.EUNAUTHORIZED, cause, reason)
}

// claim records a credential's replay key until it can no longer be accepted.
func (v *Verifier) claim(ctx context.Context, key string, exp time.Time) error {
	err := v.replay.Claim(ctx, key, exp.Add(v.skew))
	switch federation.ErrorCode(err) {
	case "":
		return nil
	case federation.ECONFLICT:
		return deny("replayed jti", err)
	default:
		return err
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
