package devstack_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
)

var syncReps = flag.Int("sync-reps", 1, "rounds of TestDiscoveryDuringSync (the acceptance check runs 20)")

// loadCard is one of the many cards a busy registry lists; gen changes its description, so
// that a sync rewrites its record.
func loadCard(i, gen int) demo.Card {
	return demo.Card{SchemaVersion: "1.0", HumanReadableID: fmt.Sprintf("load/agent-%03d", i), AgentVersion: "1",
		Name: fmt.Sprintf("Load agent %d", i), Description: fmt.Sprintf("Generation %d. %s", gen, strings.Repeat("Lorem ipsum dolor sit amet. ", 20)),
		URL: "http://127.0.0.1:9/agents/load", Provider: demo.Provider{Name: "Load"},
		Capabilities: demo.Capabilities{A2AVersion: "1.0", Type: "text"},
		Skills:       []demo.CardSkill{{ID: "echo", Name: "Echo", Description: "Echoes."}}, Tags: []string{"text", "load"}}
}

// Walking discovery pages while a sync rewrites hundreds of records never meets a 5xx,
// round after round on a busy machine: the local endpoint once cut DynamoDB answers short
// under such load (a 500 from discover). Each round changes every card of two registries
// (291 agents in all), runs the sync, and walks every page of the changed agents from four
// clients at once while it runs, with every core kept busy. go test -run
// TestDiscoveryDuringSync -sync-reps 20 ./infra/devstack is the acceptance check.
func TestDiscoveryDuringSync(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function")
	}
	const cards = 276 // beside the demo's 15 agents: 291
	ctx := context.Background()
	fed, err := demo.Start(ctx, demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fed.Close()
	for i := range cards {
		fed.Registries()[i%2].Put(loadCard(i, 0))
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, fed.Config(), 0o600); err != nil {
		t.Fatal(err)
	}
	root := localtest.RepoRoot(t)
	s, err := devstack.Start(ctx, devstack.Options{
		Template: filepath.Join(root, "template.yaml"), Config: cfg, StackName: "discovery-load",
		EndpointAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", WebSocketAddr: "127.0.0.1:0", Log: io.Discard, Secrets: fed.Secrets("local"),
		BuildDir:      filepath.Join(os.TempDir(), "devstack-test-gateway-build"),
		ScheduleEvery: time.Hour, // the test runs the syncs
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	event := []byte(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)
	if _, err := s.Invoke(ctx, "SyncFunction", event); err != nil {
		t.Fatal(err)
	}

	// Busy goroutines keep every core saturated while the test runs.
	var done atomic.Bool
	defer done.Store(true)
	for range runtime.NumCPU() {
		go func() {
			for n := 0; !done.Load(); n++ {
			}
		}()
	}

	for round := range *syncReps {
		for i := range cards {
			fed.Registries()[i%2].Put(loadCard(i, round+1))
		}
		synced := make(chan error, 1)
		go func() {
			_, err := s.Invoke(ctx, "SyncFunction", event)
			synced <- err
		}()
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := walk(s.APIURL + "/api/v1/discover?tag=load&limit=50"); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		wg.Wait()
		if err := <-synced; err != nil {
			t.Fatalf("round %d: sync: %v", round, err)
		}
	}
}

// walk follows a discovery query's pages to the end and fails on any 5xx.
func walk(url string) error {
	cursor := ""
	for page := 0; ; page++ {
		u := url
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		resp, err := http.Get(u)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode >= 500 {
			return fmt.Errorf("page %d: %d %s", page, resp.StatusCode, body)
		}
		var p struct {
			NextCursor string `json:"next_cursor"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil {
			return fmt.Errorf("page %d: %d %s", page, resp.StatusCode, body)
		}
		if p.NextCursor == "" {
			return nil
		}
		cursor = p.NextCursor
	}
}
