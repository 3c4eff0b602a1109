package main

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// helloPackage is the baseline function, relative to the module root.
const helloPackage = "./infra/benchdata/hello"

// helloTarget is a make target, defined on make's command line, that builds the baseline
// with the Makefile's own GOBUILD: whatever flags the functions get, the baseline gets too.
const helloTarget = "bench-build-hello"

// target is where a bootstrap is built for.
type target int

const (
	// host is this machine, so the binary can run here.
	host target = iota
	// deploy is what `make build` builds for: the Makefile's GOOS/GOARCH (linux/arm64).
	deploy
)

// builder builds bootstraps with the Makefile, in the module root dir, under out.
type builder struct {
	dir string
	out string
}

// function builds a function of the template as `make build` does: make build-<LogicalID>.
func (b builder) function(ctx context.Context, logicalID string, t target) (string, error) {
	return b.make(ctx, logicalID, t, "build-"+logicalID)
}

// hello builds the baseline with the Makefile's GOBUILD.
func (b builder) hello(ctx context.Context, t target) (string, error) {
	return b.make(ctx, "hello", t, "--eval", helloTarget+": ; $(GOBUILD) "+helloPackage, helloTarget)
}

func (b builder) make(ctx context.Context, name string, t target, args ...string) (string, error) {
	artifacts := filepath.Join(b.out, t.String(), name)
	args = append([]string{"--no-print-directory"}, args...)
	args = append(args, "ARTIFACTS_DIR="+artifacts)
	if t == host {
		args = append(args, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	}
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir = b.dir
	// The deployment build takes the Makefile's defaults, as a plain `make build` would,
	// not a GOOS/GOARCH this program happens to run with.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOOS=") || strings.HasPrefix(kv, "GOARCH=")
	})
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s for %s: %v\n%s", name, t, err, out)
	}
	return filepath.Join(artifacts, "bootstrap"), nil
}

func (t target) String() string {
	if t == host {
		return runtime.GOOS + "/" + runtime.GOARCH
	}
	return "deployment"
}

// platform reads what an ELF binary was built for, e.g. "linux/arm64", so the size table
// states what it measured rather than what it assumed.
func platform(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "not ELF"
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_AARCH64:
		return "linux/arm64"
	case elf.EM_X86_64:
		return "linux/amd64"
	default:
		return "ELF " + f.Machine.String()
	}
}
