package localtest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

// Federation starts the demo federation (its agents check forwarded messages against
// gatewayURL's keys when it is set) and syncs its registries into a fresh table through a
// counting client: the directory a routing test starts from.
func Federation(t testing.TB, gatewayURL string) (*demo.Federation, *dynamo.Store, *Ops) {
	t.Helper()
	ctx := context.Background()
	fed, err := demo.Start(ctx, demo.Options{GatewayURL: gatewayURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fed.Close() })
	db, ops := CountingDynamoDB(t)
	store := dynamo.NewStore(db, Table(t))
	doc, err := config.Parse(fed.Config())
	if err != nil {
		t.Fatal(err)
	}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	clients := map[string]directory.Source{}
	for _, r := range doc.Registries {
		if clients[r.ID], err = registry.New(r, httpClient, registry.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	syncer := directory.NewSyncer(store, doc.Registries, clients, directory.SyncOptions{}, logs.New(&bytes.Buffer{}, "error"))
	if _, err := syncer.Run(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	return fed, store, ops
}
