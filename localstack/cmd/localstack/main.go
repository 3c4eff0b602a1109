// Command localstack serves the local AWS endpoint (the embedded emulator) until
// interrupted. It is what `make run` starts inside the dev stack, on its own for tools
// that only need AWS APIs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/federation-gateway/gateway/localstack"
)

func main() {
	addr := flag.String("addr", localstack.DefaultAddr, "listen address")
	dataDir := flag.String("data-dir", "", "persist the emulator's state in this directory (default: in memory)")
	flag.Parse()

	if err := localstack.UseDataDir(*dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "localstack:", err)
		os.Exit(1)
	}
	ep, err := localstack.Start(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "localstack:", err)
		os.Exit(1)
	}
	fmt.Printf("local AWS endpoint ready at %s (health: %s/_localstack/health)\n", ep.URL, ep.URL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-ep.Done():
		fmt.Fprintln(os.Stderr, "localstack:", err)
	}
	_ = ep.Close()
}
