package main

import (
	"os"
	"testing"
)

func TestThreadGroup(t *testing.T) {
	for in, want := range map[string]string{
		"data-plane-kafk":    "data-plane-kafk",
		"C2 CompilerThre":    "CN_CompilerThre",
		"G1 Conc#0":          "GN_Conc#N",
		"kafka-1-raft-io":    "kafka-N-raft-io",
		"executor-group-12a": "executor-group-Na",
		"":                   "",
	} {
		if got := threadGroup(in); got != want {
			t.Errorf("threadGroup(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestThreadCores(t *testing.T) {
	a := map[string]float64{"x": 1, "y": 2, "z": 5}
	b := map[string]float64{"x": 3, "y": 2.001, "z": 6, "new": 0.5}
	if got, want := threadCores(a, b, 2, 2), "x:1.00,z:0.50"; got != want {
		t.Errorf("threadCores = %q, want %q", got, want)
	}
	if got := threadCores(a, a, 1, 3); got != "none" {
		t.Errorf("no growth: %q", got)
	}
}

// threadCPU reads this test process's own threads: the Go runtime's
// threads carry the binary's name.
func TestThreadCPU(t *testing.T) {
	m, err := threadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatal("no threads")
	}
	for k, v := range m {
		if v < 0 || k == "" {
			t.Errorf("group %q: %v s", k, v)
		}
	}
}
