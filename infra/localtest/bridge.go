package localtest

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/stepfunctions"
	"github.com/federation-gateway/gateway/shared/teg"
)

// BridgeFixture is the demo federation synced into a fresh table, with a Bridge over it:
// the demo token services, the gateway's seeded books, a real verifier of the agents'
// did:key credentials, and a Step Functions state machine of the local endpoint that
// starts and does nothing (a test drives the saga's steps itself).
type BridgeFixture struct {
	Fed     *demo.Federation
	Store   *dynamo.Store
	Ops     *Ops
	Bridge  *bridge.Bridge
	Options bridge.Options
	Machine *stepfunctions.Machine
}

var machineSeq atomic.Int64

// Bridge builds a BridgeFixture; configure may change the options before the Bridge is
// made (lanes, operators).
func Bridge(t testing.TB, configure func(*bridge.Options)) *BridgeFixture {
	t.Helper()
	ctx := context.Background()
	fed, store, ops := Federation(t, "")
	doc, err := config.Parse(fed.Config())
	if err != nil {
		t.Fatal(err)
	}
	limits, err := doc.Bridge.Limits()
	if err != nil {
		t.Fatal(err)
	}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	opts := bridge.Options{Lanes: limits, Log: logs.New(&bytes.Buffer{}, "error"), DepositWindow: time.Hour}
	for id, tok := range fed.GatewayTEGTokens() {
		initial, low, _ := doc.Bridge.Registries[id].Amounts()
		opts.Registries = append(opts.Registries, bridge.Registry{ID: id, Account: demo.GatewayAccount, InitialLiquidity: initial, LowLiquidity: low,
			Tokens: teg.New(fed.TEGURL(id), tok, httpClient, time.Second)})
	}
	if configure != nil {
		configure(&opts)
	}
	verifier, err := identity.NewVerifier(identity.Options{Audience: "federation-gateway", Replay: store.ReplayGuard()})
	if err != nil {
		t.Fatal(err)
	}
	api := sfn.NewFromConfig(AWSConfig(t))
	name := fmt.Sprintf("bridge-fixture-%d-%d", time.Now().UnixNano(), machineSeq.Add(1))
	out, err := api.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/test"),
		Definition: aws.String(`{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	machine := stepfunctions.New(api, aws.ToString(out.StateMachineArn))
	b, err := bridge.New(store, verifier, machine, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range b.RegistryIDs() {
		if _, err := b.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionSeed, RequestID: "seed-" + id, Operator: "fixture", Registry: id}); err != nil {
			t.Fatal(err)
		}
	}
	return &BridgeFixture{Fed: fed, Store: store, Ops: ops, Bridge: b, Options: opts, Machine: machine}
}

// Token signs a fresh did:key credential of a demo agent.
func (f *BridgeFixture) Token(t testing.TB, hrid string) string {
	t.Helper()
	a := f.Fed.Agent(hrid)
	tok, err := demo.SignToken(a.Key, a.DID, "federation-gateway", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Deposit makes a demo agent transfer amount to the gateway's account on a registry's
// token service, through its API, and returns the transaction ID.
func (f *BridgeFixture) Deposit(t testing.TB, hrid, registry, amount string) string {
	t.Helper()
	svc := f.Fed.TEG(registry)
	tx, err := svc.Deposit(f.Fed.TEGURL(registry), f.Fed.Agent(hrid).Account(), demo.GatewayAccount, amount, "deposit for the bridge")
	if err != nil {
		t.Fatal(err)
	}
	return tx.TransactionID
}
