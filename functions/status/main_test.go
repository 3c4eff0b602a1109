package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
)

// TestStartFailsClearly runs the function's real bootstrap, as Lambda does, with a
// configuration it cannot serve with. The runtime polls before the configuration is read
// (startup.Start), yet the start must still fail as it did when the read came first: exit
// 1, saying what is wrong.
func TestStartFailsClearly(t *testing.T) {
	ep := localtest.Endpoint(t)
	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bootstrap, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	table := localtest.Table(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no such SSM parameter", map[string]string{"STAGE": "test", "TABLE_NAME": table, "CONFIG_PARAMETER": "/federation-gateway/test/no-such-parameter"},
			"read SSM parameter /federation-gateway/test/no-such-parameter"},
		{"no table", map[string]string{"STAGE": "test", "CONFIG_FILE": filepath.Join(localtest.RepoRoot(t), "infra", "config.local.json")},
			"TABLE_NAME is not set"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := devstack.Function{LogicalID: "StatusStart" + string(rune('A'+i)), MemoryMB: 128, Timeout: 5 * time.Second, Env: tt.env}
			if err := devstack.NewCloud(ep.URL).Register(context.Background(), fn); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bootstrap)
			cmd.Env, cmd.Stderr = devstack.FunctionEnv(fn, ep.URL), &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("the process ended with %v, want exit status 1; stderr:\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, stderr.String())
			}
		})
	}
}
