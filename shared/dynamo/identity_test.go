package dynamo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

func TestReplayGuard(t *testing.T) {
	ctx := context.Background()
	g := newStore(t).ReplayGuard()
	until := time.Now().Add(5 * time.Minute)
	long := "did:key:z6Mk|" + strings.Repeat("j", 5000) // keys are hashed: any length fits

	if err := g.Claim(ctx, "did:key:a|jti-1", until); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := g.Claim(ctx, "did:key:a|jti-1", until); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Fatalf("second claim: %v, want conflict", err)
	}
	for _, other := range []string{"did:key:a|jti-2", "did:key:b|jti-1", long} {
		if err := g.Claim(ctx, other, until); err != nil {
			t.Errorf("claim %.30s: %v", other, err)
		}
	}
	if err := g.Claim(ctx, long, until); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Errorf("long key claimed twice: %v", err)
	}

	// A claim that expired but that TTL has not deleted yet does not block.
	if err := g.Claim(ctx, "did:key:a|old", time.Now().Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := g.Claim(ctx, "did:key:a|old", until); err != nil {
		t.Errorf("claim over an expired one: %v", err)
	}
	if err := g.Claim(ctx, "did:key:a|old", until); federation.ErrorCode(err) != federation.ECONFLICT {
		t.Errorf("the renewed claim must hold: %v", err)
	}
}

func TestBundleSequenceNeverGoesBackwards(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	steps := []struct {
		seq     int64
		jwks    string
		code    string
		wantSeq int64
	}{
		{5, `{"keys":[],"spiffe_sequence":5}`, "", 5},
		{3, `{"keys":[],"spiffe_sequence":3}`, federation.ECONFLICT, 5},
		{5, `{"keys":[1],"spiffe_sequence":5}`, "", 5}, // the same sequence may be written again
		{7, `{"keys":[],"spiffe_sequence":7}`, "", 7},
		{0, `{"keys":[]}`, federation.ECONFLICT, 7},
	}
	for _, st := range steps {
		err := s.PutBundle(ctx, "registry-a.example", []byte(st.jwks), st.seq, 90*time.Second)
		if federation.ErrorCode(err) != st.code {
			t.Errorf("put %d: %v, want %q", st.seq, err, st.code)
		}
		got, err := s.Bundles(ctx, []string{"registry-a.example"})
		if err != nil {
			t.Fatal(err)
		}
		if b := got["registry-a.example"]; b.Sequence != st.wantSeq || b.RefreshHint != 90*time.Second || b.UpdatedAt.IsZero() {
			t.Errorf("after put %d: %+v", st.seq, b)
		}
	}

	if err := s.PutBundle(ctx, "registry-b.example", []byte(`{"keys":[]}`), 0, 0); err != nil {
		t.Fatal(err)
	}
	got, err := s.Bundles(ctx, []string{"registry-a.example", "registry-b.example", "registry-a.example", "never.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["registry-a.example"].JWKS) != `{"keys":[],"spiffe_sequence":7}` || got["registry-b.example"].TrustDomain != "registry-b.example" {
		t.Errorf("Bundles = %+v", got)
	}
	if got, err := s.Bundles(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no domains: %v %v", got, err)
	}
}
