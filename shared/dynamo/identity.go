package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
)

// Items of identity verification:
//
//	JTI#<sha256 of the key>  JTI   a JWT ID already accepted, until expires_at (TTL)
//	BUNDLE#<trust domain>    JWKS  a trust domain's SPIFFE bundle fetched from its endpoint
const (
	jtiPrefix    = "JTI#"
	skJTI        = "JTI"
	bundlePrefix = "BUNDLE#"
	skJWKS       = "JWKS"
)

var (
	_ identity.ReplayGuard = ReplayGuard{}
	_ identity.BundleStore = (*Store)(nil)
)

// ReplayGuard is the table's record of the JWT IDs already accepted.
type ReplayGuard struct {
	s *Store
	// Now is the clock a claim's expiry is compared with; nil means time.Now. It must be
	// the verifier's clock: a test that verifies at another time sets both.
	Now func() time.Time
}

// ReplayGuard returns the table's ReplayGuard.
func (s *Store) ReplayGuard() ReplayGuard { return ReplayGuard{s: s} }

// Claim implements identity.ReplayGuard with a conditional put.
func (g ReplayGuard) Claim(ctx context.Context, id string, until time.Time) error {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	_, err := g.s.db.PutItem(ctx, putItem(g.s.replayPut(id, until, now())))
	if err != nil {
		err = translate(err)
		if federation.ErrorCode(err) == federation.ECONFLICT {
			return federation.Wrap(federation.ECONFLICT, err, "the token was already used")
		}
		return fmt.Errorf("claim jti: %w", err)
	}
	return nil
}

// replayPut is the conditional put that claims a JWT ID until a time, alone (Claim) or in
// a transaction (Admit). The ID is hashed: it is built from caller-chosen values of any
// length. A claim past its expiry that TTL has not yet deleted (TTL runs within days, not
// seconds) does not block a new one.
func (s *Store) replayPut(id string, until, now time.Time) *types.Put {
	sum := sha256.Sum256([]byte(id))
	item := key(jtiPrefix+hex.EncodeToString(sum[:]), skJTI)
	// Rounded up, so the claim never ends before until.
	item["expires_at"] = nv(until.Add(time.Second - 1).Unix())
	return &types.Put{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR expires_at < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": nv(now.Unix())},
	}
}

// putItem is the PutItem request of a transaction's put.
func putItem(p *types.Put) *dynamodb.PutItemInput {
	return &dynamodb.PutItemInput{
		TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
		ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
	}
}

// PutBundle implements identity.BundleStore: the condition keeps the sequence from going
// backwards when two refreshes race.
func (s *Store) PutBundle(ctx context.Context, trustDomain string, jwks []byte, sequence int64, refreshHint time.Duration) error {
	item := key(bundlePrefix+trustDomain, skJWKS)
	item["trust_domain"] = sv(trustDomain)
	item["jwks"] = sv(string(jwks))
	item["sequence"] = nv(sequence)
	item["refresh_hint_s"] = nv(int64(refreshHint / time.Second))
	item["updated_at"] = sv(time.Now().UTC().Format(time.RFC3339Nano))
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR #seq <= :seq"),
		ExpressionAttributeNames:  map[string]string{"#seq": "sequence"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":seq": nv(sequence)},
	})
	if err != nil {
		err = translate(err)
		if federation.ErrorCode(err) == federation.ECONFLICT {
			return federation.Wrap(federation.ECONFLICT, err, fmt.Sprintf("a bundle of %s newer than sequence %d is stored", trustDomain, sequence))
		}
		return fmt.Errorf("put bundle of %s: %w", trustDomain, err)
	}
	return nil
}

// Bundles implements identity.BundleStore with BatchGetItem.
func (s *Store) Bundles(ctx context.Context, domains []string) (map[string]identity.StoredBundle, error) {
	keys := make([]map[string]types.AttributeValue, len(domains))
	for i, d := range domains {
		keys[i] = key(bundlePrefix+d, skJWKS)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get bundles: %w", err)
	}
	out := make(map[string]identity.StoredBundle, len(items))
	for _, it := range items {
		b := identity.StoredBundle{
			TrustDomain: str(it, "trust_domain"),
			JWKS:        []byte(str(it, "jwks")),
			Sequence:    int64Of(it, "sequence"),
			RefreshHint: time.Duration(int64Of(it, "refresh_hint_s")) * time.Second,
		}
		if t, err := time.Parse(time.RFC3339Nano, str(it, "updated_at")); err == nil {
			b.UpdatedAt = t
		}
		out[b.TrustDomain] = b
	}
	return out, nil
}

func int64Of(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}
