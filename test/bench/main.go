// Command psbench is the load and throughput harness of pixelstream
// (docs/performance.md). scripts/bench/run.sh drives it; each subcommand is
// bounded in count and time and prints "key=value" result lines.
//
//	psbench bare     -addr A                      a bare fasthttp server answering the same GIF
//	psbench topics   -brokers B -partitions N T…  create topics
//	psbench gen      -n N -o FILE                 realistic requests for wrk's Lua script
//	psbench mixstats -n N                         properties of the realistic mix
//	psbench prefill  -brokers B -topic T -n N     raw hits (pkg/hit) of the realistic mix
//	psbench drain    -metrics URL -pid P -n N     enricher throughput until N records are done
//	psbench rate     -url U -rate R -duration D   constant-rate client, latency percentiles
//	psbench e2e      -url U -brokers B -topic T   pixel response → enriched record latency
//	psbench proc     -pid P                       VmHWM, VmRSS and CPU time of a process
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: psbench bare|topics|gen|mixstats|prefill|dumpmix|drain|rate|e2e|proc [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"bare": cmdBare, "topics": cmdTopics, "gen": cmdGen, "mixstats": cmdMixStats, "prefill": cmdPrefill,
		"drain": cmdDrain, "rate": cmdRate, "e2e": cmdE2E, "proc": cmdProc, "dumpmix": cmdDumpMix,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "psbench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "psbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
