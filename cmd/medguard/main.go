// Command medguard is a hospital's secure medical-record archive and the
// information-security management around it. Run "medguard help" for the
// commands; "medguard serve" starts the server with no configuration.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"medguard/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "medguard:", err)
		os.Exit(cli.ExitCode(err))
	}
}
