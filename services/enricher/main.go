// Command enricher consumes raw pixel hits from Kafka, enriches them with
// geo, device, page and campaign data, and writes one JSON pageview per hit
// to the enriched topic. It only wires; the logic lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	pkgconfig "github.com/pixelstream/pixelstream/pkg/config"
	"github.com/pixelstream/pixelstream/pkg/logging"
	"github.com/pixelstream/pixelstream/services/enricher/internal/app"
	"github.com/pixelstream/pixelstream/services/enricher/internal/config"
)

func main() {
	var cfg config.Config
	set := pkgconfig.New("enricher")
	cfg.Declare(set)
	printOptions := false
	set.Bool(&printOptions, "print-options", "", false, "print the options as a Markdown table and exit")
	if err := set.Parse(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, pkgconfig.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "enricher:", err)
		os.Exit(2)
	}
	if printOptions {
		fmt.Print(set.Markdown())
		return
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "enricher: refusing to start:", err)
		os.Exit(2)
	}
	log, err := logging.New("enricher", cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "enricher:", err)
		os.Exit(2)
	}
	defer func() { _ = log.Sync() }()
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx, &cfg, log); err != nil {
		os.Exit(1)
	}
}
