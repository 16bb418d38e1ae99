package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkawriter"
)

// rawOf fills r as the edge would for h received at ns.
func rawOf(h *Hit, ns int64, r *hit.Raw) {
	r.Reset()
	r.SchemaVersion = hit.SchemaVersion
	r.EventID = hit.NewEventID(ns)
	r.ReceivedAtNs = ns
	r.APIKey = append(r.APIKey, h.Key...)
	r.ProjectID = append(r.ProjectID, h.Project...)
	r.ClientIP = h.IP
	r.UserAgent = append(r.UserAgent, h.UA...)
	r.Referer = append(r.Referer, h.Referer...)
	r.Host = append(r.Host, "track.example.com"...)
	r.Query = append(r.Query, h.Query...)
	r.AcceptLanguage = append(r.AcceptLanguage, h.AcceptLanguage...)
	r.DNT, r.GPC = h.DNT, h.GPC
	r.Hints.UA = append(r.Hints.UA, h.CHUA...)
	r.Hints.Mobile = append(r.Hints.Mobile, h.CHMobile...)
	r.Hints.Platform = append(r.Hints.Platform, h.CHPlatform...)
	r.EdgeInstance = append(r.EdgeInstance, "bench-prefill"...)
	r.Method = append(r.Method, "GET"...)
}

// cmdPrefill writes n raw hits of the realistic mix to topic, keyed and
// partitioned as the edge does (visitor key, murmur2), compressed with the
// edge's default codec (snappy; -compression), with receive times spread
// over the last span.
func cmdPrefill(args []string) error {
	fs := flag.NewFlagSet("prefill", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:19392", "Kafka brokers")
	topic := fs.String("topic", "bench.tput.raw", "raw topic")
	n := fs.Int("n", 1_500_000, "hits to write")
	seed := fs.Uint64("seed", 2, "random seed")
	span := fs.Duration("span", 15*time.Minute, "receive times spread over this span ending now")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	unique := fs.Float64("unique", -1, "override the mix's UniqueFrac")
	rare := fs.Float64("rare", -1, "override the mix's RareFrac")
	codec := fs.String("compression", "snappy", "record batch compression, as the edge's -kafka-compression: "+kafkawriter.CompressionNames)
	chunk := fs.Int("chunk", 4000, "hits per write: small chunks make many produce requests, which is what warms a broker's JIT for the edge's requests")
	_ = fs.Parse(args)
	if *chunk < 1 {
		return fmt.Errorf("prefill: -chunk %d: want 1 or more", *chunk)
	}
	comp, ok := kafkawriter.ParseCompression(*codec)
	if !ok {
		return fmt.Errorf("prefill: -compression %q: want %s", *codec, kafkawriter.CompressionNames)
	}
	cfg := DefaultMix(*seed)
	if *unique >= 0 {
		cfg.UniqueFrac = *unique
	}
	if *rare >= 0 {
		cfg.RareFrac = *rare
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// The edge's writer and codec, so the enricher reads frames like the
	// edge's.
	w, err := kafkawriter.New(kafkawriter.Config{
		Brokers:      strings.Split(*brokers, ","),
		Topic:        *topic,
		Compression:  comp,
		RequiredAcks: kafka.RequireOne,
		WriteTimeout: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	defer w.Close()

	chunks := make(chan []kafka.Message, 4)
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			for msgs := range chunks {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					errc <- err
					for range chunks {
					}
					return
				}
			}
			errc <- nil
		}()
	}

	start := time.Now()
	m := NewMix(cfg)
	var h Hit
	var r hit.Raw
	base := start.Add(-*span).UnixNano()
	step := span.Nanoseconds() / int64(*n)
	bytes, unique1 := 0, 0
	msgs := make([]kafka.Message, 0, *chunk)
	for i := range *n {
		m.Next(&h)
		if h.UniqueUA {
			unique1++
		}
		rawOf(&h, base+int64(i)*step, &r)
		val := r.AppendProto(nil)
		bytes += len(val)
		key := hit.AppendVisitorKey(nil, r.ProjectID, r.ClientIP, r.UserAgent)
		msgs = append(msgs, kafka.Message{Key: key, Value: val})
		if len(msgs) == *chunk || i == *n-1 {
			select {
			case chunks <- msgs:
			case <-ctx.Done():
				close(chunks)
				return ctx.Err()
			}
			msgs = make([]kafka.Message, 0, *chunk)
		}
	}
	close(chunks)
	for range 2 {
		if err := <-errc; err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("prefilled=%d topic=%s writes=%d seconds=%.1f rate=%.0f avg_record_bytes=%d\n", *n, *topic, (*n+*chunk-1) / *chunk, el.Seconds(), float64(*n)/el.Seconds(), bytes / *n)
	return nil
}
