package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// The startup section's goals: what `make run` prints while it compiles and starts.
const (
	maxFirstWord = 5 * time.Second  // from the start to its first line
	maxSilence   = 10 * time.Second // between two lines until ready
	startupLimit = 20 * time.Minute // one start, cold: compiling everything on 2 busy cores
)

// startupRun is one `make run` until its ready banner.
type startupRun struct {
	Name      string
	Ready     time.Duration // from the start of the build to the banner
	FirstWord time.Duration // to the first line printed
	Silence   time.Duration // the longest gap between two lines before the banner
	Lines     int
}

// benchStartup measures the time to ready of the dev stack as `make run` starts it
// (`make devstack`, then `devstack run`), cold with an empty Go build cache, as on a fresh
// machine (the module cache is kept: downloads are not the question), then warm, as the
// second run. It runs without the demo federation (whose ports are fixed) on free ports,
// building into a directory of its own.
func benchStartup(ctx context.Context, root string) ([]startupRun, error) {
	dir, err := os.MkdirTemp("", "bench-startup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "GOCACHE="+filepath.Join(dir, "gocache"))
	var runs []startupRun
	for _, name := range []string{"cold: empty Go build cache", "warm: the second run"} {
		progress("startup, %s (the cold run compiles for minutes)", name)
		r, err := startOnce(ctx, root, dir, env)
		if err != nil {
			return runs, fmt.Errorf("%s: %w", name, err)
		}
		r.Name = name
		runs = append(runs, r)
	}
	return runs, nil
}

// startOnce runs make devstack and devstack run, as `make run` does, until the banner,
// then stops the stack.
func startOnce(ctx context.Context, root, dir string, env []string) (startupRun, error) {
	ctx, cancel := context.WithTimeout(ctx, startupLimit)
	defer cancel()
	bin := filepath.Join(dir, "bin")
	start := time.Now()
	lines := &lineClock{start: start, last: start}
	// The same two steps as the Makefile's run target, with the build's outputs here.
	build := exec.CommandContext(ctx, "make", "--no-print-directory", "devstack", "BIN="+bin)
	build.Dir, build.Env = root, env
	build.Stdout, build.Stderr = lines, lines
	if err := build.Run(); err != nil {
		return startupRun{}, fmt.Errorf("make devstack: %w", err)
	}
	run := exec.Command(filepath.Join(bin, "devstack"), "run", "-config", "infra/config.local.json",
		"-endpoint", "127.0.0.1:0", "-api", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-build-dir", filepath.Join(dir, "host"))
	run.Dir = root
	run.Env = append(env, fmt.Sprintf("DEVSTACK_STARTED=%d", start.UnixNano()))
	out, err := run.StderrPipe()
	if err != nil {
		return startupRun{}, err
	}
	if err := run.Start(); err != nil {
		return startupRun{}, err
	}
	defer func() {
		_ = run.Process.Signal(syscall.SIGTERM)
		_ = run.Wait()
	}()
	ready := make(chan time.Duration, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			_, _ = lines.Write([]byte(sc.Text() + "\n"))
			if strings.HasPrefix(sc.Text(), "Federation Gateway is running") {
				ready <- time.Since(start)
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case d := <-ready:
		r := lines.result()
		r.Ready = d
		return r, nil
	case <-ctx.Done():
		return startupRun{}, fmt.Errorf("not ready after %s", startupLimit)
	}
}

// lineClock notes when each line of output arrives, from any goroutine.
type lineClock struct {
	mu          sync.Mutex
	start, last time.Time
	first       time.Duration
	silence     time.Duration
	lines       int
}

func (c *lineClock) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for range strings.Count(string(p), "\n") {
		if c.lines == 0 {
			c.first = now.Sub(c.start)
		}
		c.silence = max(c.silence, now.Sub(c.last))
		c.last = now
		c.lines++
	}
	return len(p), nil
}

func (c *lineClock) result() startupRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	return startupRun{FirstWord: c.first, Silence: c.silence, Lines: c.lines}
}

// reportStartup prints the startup table.
func reportStartup(w io.Writer, runs []startupRun) {
	fmt.Fprintf(w, "\nTime to ready of `make run` (make devstack, devstack run; no demo federation; goals: first line ≤ %s, never silent > %s)\n",
		maxFirstWord, maxSilence)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("run")
	for _, r := range runs {
		width = max(width, len(r.Name))
	}
	fmt.Fprintf(tw, "%-*s\tready\tfirst line\tlongest silence\tlines\tgoal\t\n", width, "run")
	for _, r := range runs {
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%d\t%s\t\n", width, r.Name, seconds(r.Ready), seconds(r.FirstWord), seconds(r.Silence), r.Lines,
			pass(r.FirstWord <= maxFirstWord && r.Silence <= maxSilence))
	}
	tw.Flush()
}
