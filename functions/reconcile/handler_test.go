package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// Reconciliation of the fixture's books, right after seeding and after a deposit nobody
// claimed and money the books never saw: the drift is published as an EMF line.
func TestHandler(t *testing.T) {
	fx := localtest.Bridge(t, nil)
	raw, err := os.ReadFile(filepath.Join(localtest.RepoRoot(t), "events", "reconcile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var emf bytes.Buffer
	h := Handler(fx.Bridge, metrics.New(&emf, "test", "reconcile"))
	ctx := context.Background()
	res, err := h(ctx, raw)
	if err != nil || len(res.Registries) != 2 || res.Registries[0].Drift != "0" || res.Registries[1].Drift != "0" {
		t.Fatalf("a clean reconciliation: %+v %v", res, err)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.Split(emf.Bytes(), []byte("\n"))[0], &line); err != nil || line["ReconciliationDrift"] != 0.0 ||
		!strings.Contains(emf.String(), `"Namespace":"FederationGateway"`) || !strings.Contains(emf.String(), `"Name":"ReconciliationDrift"`) {
		t.Fatalf("EMF: %s %v", emf.String(), err)
	}

	// A deposit that no transfer claimed is explained; tokens the books never saw are drift.
	fx.Deposit(t, "numerix/calculator", "alpha", "7")
	fx.Fed.TEG("beta").Issue(demo.GatewayAccount, decimal.RequireFromString("2.5"))
	emf.Reset()
	res, err = h(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]RegistryDrift{}
	for _, r := range res.Registries {
		got[r.Registry] = r
	}
	if a, b := got["alpha"], got["beta"]; a.Drift != "0" || a.Unclaimed != "7" || b.Drift != "2.5" {
		t.Errorf("drift: %+v", res)
	}
	if !strings.Contains(emf.String(), `"ReconciliationDrift":2.5`) {
		t.Errorf("EMF: %s", emf.String())
	}
}
