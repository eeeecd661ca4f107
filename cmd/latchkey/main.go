// Command latchkey turns visitor sign-ins into self-expiring door access.
// Subcommands: serve (the service), lockctl (the bundled lock controller
// alone), simulate (post signed visitor webhooks to a running server).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "latchkey:", err)
		os.Exit(1)
	}
}
