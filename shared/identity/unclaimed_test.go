package identity_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
)

// VerifyUnclaimed verifies as Verify does but leaves the replay claim to its caller: the
// credential stays acceptable until the key it returns is claimed, and is a replay after;
// the key is the one Verify claims.
func TestVerifyUnclaimed(t *testing.T) {
	ctx := context.Background()
	guard := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t)).ReplayGuard()
	v, err := identity.NewVerifier(identity.Options{Audience: audience, Replay: guard})
	if err != nil {
		t.Fatal(err)
	}
	key := edKey(t)
	did := didKey(key.Public().(ed25519.PublicKey))
	fresh := func() federation.Credential {
		return federation.Credential{Token: sign(t, jose.EdDSA, key, did, claims(did, did), nil)}
	}

	cred := fresh()
	id, first, err := v.VerifyUnclaimed(ctx, cred)
	if err != nil || id.Subject != did {
		t.Fatalf("VerifyUnclaimed: %+v, %v", id, err)
	}
	if first.Key == "" || !first.Until.After(time.Now().Add(4*time.Minute)) {
		t.Fatalf("replay claim = %+v; want a key held past the token's expiry", first)
	}
	if _, again, err := v.VerifyUnclaimed(ctx, cred); err != nil || again != first {
		t.Fatalf("unclaimed, the credential verifies again with the same claim: %+v, %v", again, err)
	}
	if err := guard.Claim(ctx, first.Key, first.Until); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, cred); federation.ErrorMessage(err) != "replayed jti" {
		t.Errorf("Verify of a claimed credential: %v; want replayed jti", err)
	}

	// What Verify claims is the key VerifyUnclaimed names.
	other := fresh()
	_, claim, err := v.VerifyUnclaimed(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := guard.Claim(ctx, claim.Key, claim.Until); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Errorf("the key Verify claimed: %v; want it claimed", err)
	}

	// A credential that fails verification has no claim.
	bad := fresh()
	bad.Token = bad.Token[:len(bad.Token)-4] + "AAAA"
	if _, r, err := v.VerifyUnclaimed(ctx, bad); federation.ErrorCode(err) != federation.EUNAUTHORIZED || r != (identity.Replay{}) {
		t.Errorf("a forged credential: %+v, %v", r, err)
	}
}
