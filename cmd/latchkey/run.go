package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `usage: latchkey <command> [flags]

commands:
  serve      run the service (web, webhooks, worker, scheduler, bundled lockctl)
  lockctl    run the bundled Kisi-compatible lock controller alone
  simulate   post a signed visitor webhook to a running server (sign-in, sign-out, invite)
  users      manage front-desk users: users create --email … --role admin|frontdesk
  bench      measure a running server over loopback: ingest, sign-in/out latency, unlocks, CPU, memory

Run "latchkey <command> -h" for the flags of a command.`

// run is the whole program: main only wires the process to it, so tests can
// run it with their own arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stdout, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout)
	case "lockctl":
		return runLockctl(ctx, args[1:], getenv, stdout)
	case "simulate":
		return runSimulate(ctx, args[1:], getenv, stdout)
	case "users":
		return runUsers(ctx, args[1:], getenv, os.Stdin, stdout)
	case "bench":
		return runBench(ctx, args[1:], getenv, stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (want one of serve, lockctl, simulate, bench)", strings.TrimSpace(args[0]))
}
