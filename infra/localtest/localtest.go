// Package localtest gives tests the real local AWS endpoint and fresh resources shaped
// exactly as template.yaml declares them, so storage is tested against the DynamoDB API and
// the template's keys and indexes, never a mock.
package localtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/localstack"
	"github.com/federation-gateway/gateway/shared/dynamo"
)

var (
	once     sync.Once
	endpoint *localstack.Endpoint
	startErr error
	seq      atomic.Int64
)

// Endpoint returns the test process's local AWS endpoint, started on a free port on first
// use. It lives as long as the process: the emulator's state is per process anyway.
func Endpoint(t testing.TB) *localstack.Endpoint {
	t.Helper()
	once.Do(func() { endpoint, startErr = localstack.Start("127.0.0.1:0") })
	if startErr != nil {
		t.Fatalf("start the local AWS endpoint: %v", startErr)
	}
	return endpoint
}

// AWSConfig returns an SDK configuration for the endpoint with the emulator's dummy
// credentials.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	return devstack.LocalAWSConfig(Endpoint(t).URL)
}

// DynamoDB returns a DynamoDB client of the tests' DynamoDB engine (see Engine), built as
// the functions build theirs.
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	return dynamo.NewClient(devstack.LocalAWSConfig(DynamoDBURL(t)), true)
}

// Table creates a table in the tests' DynamoDB engine, named uniquely for the test, with
// the keys, indexes, stream and TTL of template.yaml's directory table, and returns its name.
func Table(t testing.TB) string {
	t.Helper()
	return createTable(t, Engine(t))
}

// StreamedTable creates a table as Table does, always in the local endpoint's emulator
// (kumo), with its stream, for the tests that read the stream; it returns the table's name
// and a client of it. The moto pass's tables have no stream (see Table).
func StreamedTable(t testing.TB) (string, *dynamodb.Client) {
	t.Helper()
	return createTable(t, EngineKumo), dynamo.NewClient(AWSConfig(t), true)
}

func createTable(t testing.TB, engine string) string {
	t.Helper()
	tmpl, err := devstack.LoadTemplate(TemplatePath(t), "test", map[string]string{"GatewayConfig": `{"registries":[]}`})
	if err != nil {
		t.Fatalf("load template: %v", err)
	}
	if len(tmpl.Tables) != 1 {
		t.Fatalf("template.yaml declares %d tables; the tests expect one", len(tmpl.Tables))
	}
	table := tmpl.Tables[0]
	table.Name = fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), seq.Add(1))
	url := Endpoint(t).URL
	if engine == EngineMoto {
		// moto keeps every stream record of a table and copies them all, with the items,
		// at the start of every transaction (to undo it if it is canceled), so a
		// transaction costs more with every write the test made before it. The tests that
		// run on moto read no stream: its tables have none.
		table.Properties = maps.Clone(table.Properties)
		delete(table.Properties, "StreamSpecification")
		logMotoErrors(t)
		url = DynamoDBURL(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := devstack.NewCloud(url).CreateTable(ctx, table); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return table.Name
}

// TemplatePath returns the path of the repository's template.yaml, found from the test's
// working directory upwards.
func TemplatePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "template.yaml")
}

// RepoRoot returns the repository's root: the folder of go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// HTTPEvent reads a sample HTTP API event of events/, the same file `sam local invoke -e`
// and `make invoke` use.
func HTTPEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	return ev
}

// MinuteClock returns a clock for a router that starts at the start of the current
// minute and runs with real time. The rate limits count per minute of the router's
// clock, so a test that fills a limit and then expects a refusal would see the limit
// renewed if a minute started in between (more likely the slower the engine: moto);
// with this clock only a test longer than a minute can.
func MinuteClock() func() time.Time {
	start := time.Now()
	minute := start.Truncate(time.Minute)
	return func() time.Time { return minute.Add(time.Since(start)) }
}

// Event reads a sample event of events/ of any kind (a WebSocket route's, a stream
// batch) into v, as `make invoke` and `sam local invoke -e` read it.
func Event(t testing.TB, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
}
