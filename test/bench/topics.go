package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

func cmdTopics(args []string) error {
	fs := flag.NewFlagSet("topics", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:19392", "Kafka brokers")
	partitions := fs.Int("partitions", 6, "partitions per topic")
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		return fmt.Errorf("no topics given")
	}
	if err := kafkatest.CreateTopics(strings.Split(*brokers, ","), *partitions, fs.Args()...); err != nil {
		return err
	}
	fmt.Printf("topics_created=%s partitions=%d\n", strings.Join(fs.Args(), ","), *partitions)
	return nil
}
