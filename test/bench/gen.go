package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

// pixelPath is the edge's pixel endpoint.
const pixelPath = "/api/v1/pixel"

// cmdGen writes n requests of the realistic mix, one per line, for
// scripts/bench/realistic.lua: tab-separated path, User-Agent,
// X-Forwarded-For, Referer, Accept-Language, Sec-CH-UA, Sec-CH-UA-Mobile,
// Sec-CH-UA-Platform, DNT (empty fields mean "no such header").
func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 20000, "requests")
	out := fs.String("o", "requests.tsv", "output file")
	seed := fs.Uint64("seed", 1, "random seed")
	_ = fs.Parse(args)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	m := NewMix(DefaultMix(*seed))
	var h Hit
	bytes := 0
	for range *n {
		m.Next(&h)
		dnt := ""
		if h.DNT {
			dnt = "1"
		}
		line := strings.Join([]string{pixelPath + "?" + h.Query, h.UA, h.IP.String(), h.Referer, h.AcceptLanguage, h.CHUA, h.CHMobile, h.CHPlatform, dnt}, "\t")
		bytes += len(line)
		fmt.Fprintln(w, line)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("requests=%d file=%s avg_line_bytes=%d\n", *n, *out, bytes / *n)
	return nil
}

// cmdMixStats prints what the realistic mix looks like over n hits: the
// figures docs/performance.md argues from.
func cmdMixStats(args []string) error {
	fs := flag.NewFlagSet("mixstats", flag.ExitOnError)
	n := fs.Int("n", 1_500_000, "hits")
	seed := fs.Uint64("seed", 1, "random seed")
	unique := fs.Float64("unique", -1, "override UniqueFrac")
	rare := fs.Float64("rare", -1, "override RareFrac")
	_ = fs.Parse(args)
	cfg := DefaultMix(*seed)
	if *unique >= 0 {
		cfg.UniqueFrac = *unique
	}
	if *rare >= 0 {
		cfg.RareFrac = *rare
	}
	m := NewMix(cfg)
	counts := map[string]int{}
	var h Hit
	sampled := 0
	email, v6, utm, click, dnt, chua, qbytes, rbytes := 0, 0, 0, 0, 0, 0, 0, 0
	for i := range *n {
		m.Next(&h)
		counts[h.UA]++
		if h.Email {
			email++
		}
		if h.IP.Is6() {
			v6++
		}
		if strings.Contains(h.Query, "utm_source%3D") || strings.Contains(h.Query, "utm_source=") {
			utm++
		}
		if strings.Contains(h.Query, "clid%3D") || strings.Contains(h.Query, "li_fat_id%3D") {
			click++
		}
		if h.DNT {
			dnt++
		}
		if h.CHUA != "" {
			chua++
		}
		qbytes += len(h.Query)
		if i%16 == 0 { // a sample is enough for the average size
			rbytes += len(requestBytes(&h, "127.0.0.1:18080", false))
			sampled++
		}
	}
	freq := make([]int, 0, len(counts))
	once := 0
	for _, c := range counts {
		freq = append(freq, c)
		if c == 1 {
			once++
		}
	}
	slices.SortFunc(freq, func(a, b int) int { return cmp.Compare(b, a) })
	top := func(k int) float64 {
		s := 0
		for i := 0; i < k && i < len(freq); i++ {
			s += freq[i]
		}
		return 100 * float64(s) / float64(*n)
	}
	pct := func(x int) float64 { return 100 * float64(x) / float64(*n) }
	fmt.Printf("hits=%d head_uas=%d distinct_uas=%d first_seen_pct=%.2f seen_once_pct=%.2f top1_pct=%.1f top10_pct=%.1f top200_pct=%.1f\n",
		*n, m.HeadUAs(), len(counts), pct(len(counts)), pct(once), top(1), top(10), top(200))
	fmt.Printf("email_open_pct=%.1f ipv6_pct=%.1f utm_pct=%.1f click_id_pct=%.1f dnt_pct=%.1f sec_ch_ua_pct=%.1f avg_query_bytes=%d avg_request_bytes=%d\n",
		pct(email), pct(v6), pct(utm), pct(click), pct(dnt), pct(chua), qbytes / *n, rbytes/max(sampled, 1))
	return nil
}
