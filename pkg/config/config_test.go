package config

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

type opts struct {
	addr    string
	n       int
	d       time.Duration
	brokers []string
	on      bool
}

func declare() (*Set, *opts) {
	o := &opts{}
	s := New("svc")
	s.String(&o.addr, "addr", "SVC_ADDR", ":8080", "listen address")
	s.Int(&o.n, "n", "SVC_N", 3, "count")
	s.Duration(&o.d, "timeout", "SVC_TIMEOUT", time.Second, "timeout")
	s.List(&o.brokers, "kafka-brokers", "KAFKA_BROKERS", nil, "brokers")
	s.Bool(&o.on, "on", "SVC_ON", false, "switch")
	return s, o
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want opts
	}{
		{"defaults", nil, nil, opts{addr: ":8080", n: 3, d: time.Second}},
		{"env", nil, map[string]string{"SVC_ADDR": ":9", "SVC_N": "7", "KAFKA_BROKERS": "a:1, b:2,", "SVC_ON": "true"},
			opts{addr: ":9", n: 7, d: time.Second, brokers: []string{"a:1", "b:2"}, on: true}},
		{"flag beats env", []string{"-addr", ":1", "-kafka-brokers=c:3"}, map[string]string{"SVC_ADDR": ":9", "KAFKA_BROKERS": "a:1"},
			opts{addr: ":1", n: 3, d: time.Second, brokers: []string{"c:3"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := declare()
			if err := s.Parse(tc.args, func(k string) string { return tc.env[k] }, io.Discard); err != nil {
				t.Fatal(err)
			}
			if o.addr != tc.want.addr || o.n != tc.want.n || o.d != tc.want.d || o.on != tc.want.on ||
				strings.Join(o.brokers, ",") != strings.Join(tc.want.brokers, ",") {
				t.Fatalf("got %+v want %+v", *o, tc.want)
			}
		})
	}
}

func TestBadEnvNamesVariable(t *testing.T) {
	s, _ := declare()
	err := s.Parse(nil, func(k string) string {
		if k == "SVC_TIMEOUT" {
			return "soon"
		}
		return ""
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SVC_TIMEOUT") {
		t.Fatalf("want error naming SVC_TIMEOUT, got %v", err)
	}
}

func TestHelpAndStrayArgs(t *testing.T) {
	s, _ := declare()
	var out strings.Builder
	if err := s.Parse([]string{"-h"}, func(string) string { return "" }, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("want ErrHelp, got %v", err)
	}
	if !strings.Contains(out.String(), "KAFKA_BROKERS") {
		t.Fatalf("usage lacks env names: %s", out.String())
	}
	s, _ = declare()
	if err := s.Parse([]string{"stray"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("stray argument accepted")
	}
}

func TestMarkdownListsEveryOption(t *testing.T) {
	s, _ := declare()
	md := s.Markdown()
	for _, o := range s.Options() {
		if !strings.Contains(md, "`-"+o.Flag+"`") || !strings.Contains(md, "`"+o.Env+"`") {
			t.Fatalf("markdown lacks %s: %s", o.Flag, md)
		}
	}
}
