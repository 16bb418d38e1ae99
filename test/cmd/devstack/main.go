// Command devstack runs the whole pipeline on one machine with no external
// services, for `make run`: an embedded Kafka-protocol broker (kfake) on
// 127.0.0.1:9092 with the three topics, then the real edge and enricher
// binaries configured against it. Ctrl-C stops everything in order: edge
// first (it drains to the broker), then the enricher, then the broker.
//
// kfake is a development broker: for anything else point the services at
// real Kafka (`make kafka-up` starts one from Maven Central jars).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// tmpSpool is a spool directory devstack created and removes on exit.
var tmpSpool string

func main() {
	edgeBin := flag.String("edge", "bin/edge", "edge binary")
	enricherBin := flag.String("enricher", "bin/enricher", "enricher binary")
	port := flag.Int("kafka-port", 9092, "port of the embedded broker on 127.0.0.1")
	city := flag.String("geoip-city", "", "GeoLite2 City .mmdb for the enricher; empty runs without geo")
	dataDir := flag.String("data-dir", "", "keep the embedded broker's data here across runs (empty: in memory)")
	spoolDir := flag.String("spool-dir", "", "the edge's disk spool (empty: a fresh temporary directory)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("devstack: ")

	opts := []kfake.Opt{
		kfake.Ports(*port),
		kfake.SeedTopics(3, "hits.raw", "pageviews.enriched", "hits.deadletter"),
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		log.Fatalf("embedded broker on 127.0.0.1:%d: %v (is something else on that port?)", *port, err)
	}
	brokers := "127.0.0.1:" + strconv.Itoa(*port)
	log.Printf("embedded Kafka-protocol broker (kfake) on %s: topics hits.raw, pageviews.enriched, hits.deadletter", brokers)

	if *spoolDir == "" {
		d, err := os.MkdirTemp("", "pixelstream-devstack-spool")
		if err != nil {
			log.Fatal(err)
		}
		*spoolDir = d
		tmpSpool = d
	}
	common := append(os.Environ(), "KAFKA_BROKERS="+brokers)
	enricher := start("enricher", *enricherBin, append(common,
		"ENRICHER_GEOIP_CITY="+*city,
		"ENRICHER_GROUP_SESSION_TIMEOUT=6s",
	))
	edge := start("edge", *edgeBin, append(common,
		"EDGE_KEYS=demo=demo",
		"EDGE_TRUSTED_PROXIES=127.0.0.0/8,::1/128",
		"EDGE_DRAIN_DELAY=0s",
		"EDGE_SPOOL_DIR="+*spoolDir,
	))
	if *city == "" {
		log.Printf("WARNING: no GeoLite2 City database: geo fields will be empty")
	}
	log.Printf(`ready. Try:
  curl -s -o /dev/null -w '%%{http_code} %%{content_type} %%{size_download} bytes\n' -H 'X-Forwarded-For: 81.2.69.142' \
    'http://127.0.0.1:8080/api/v1/pixel?key=demo&url=https%%3A%%2F%%2Fshop.example%%2F%%3Futm_source%%3Dnewsletter%%26gclid%%3DCj0KCQ'
  kcat -b %s -t pageviews.enriched -C -e
Metrics: http://127.0.0.1:9100/metrics (edge), http://127.0.0.1:9101/metrics (enricher). Ctrl-C stops.`, brokers)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	code := 0
	select {
	case s := <-sig:
		log.Printf("%v: stopping", s)
	case <-edge.done:
		log.Printf("edge exited unexpectedly: stopping the rest")
		code = 1
	case <-enricher.done:
		log.Printf("enricher exited unexpectedly: stopping the rest")
		code = 1
	}
	stop(edge, 20*time.Second)
	stop(enricher, 40*time.Second)
	cluster.Close()
	if tmpSpool != "" {
		// The embedded broker kept nothing, so neither may the spool.
		_ = os.RemoveAll(tmpSpool)
	}
	log.Printf("stopped")
	os.Exit(code)
}

// proc is a started child; done closes when it has exited.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func start(name, bin string, env []string) *proc {
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatalf("start %s (%s): %v", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p
}

// stop sends SIGTERM and waits for the process's own graceful shutdown,
// killing it only past the timeout.
func stop(p *proc, timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		fmt.Fprintf(os.Stderr, "devstack: %s did not stop in %v: killing\n", p.name, timeout)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
