package main

import (
	"os"
	"runtime"
	"testing"
	"time"
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

func TestPerCPUTimes(t *testing.T) {
	cpus, err := perCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) < runtime.NumCPU() {
		t.Fatalf("%d CPUs in /proc/stat, runtime sees %d", len(cpus), runtime.NumCPU())
	}
	for i, c := range cpus {
		if c.busy < 0 || c.idle < 0 || c.steal < 0 || c.busy+c.idle == 0 {
			t.Errorf("cpu%d: %+v", i, c)
		}
	}
}

func TestCPUSampleUntil(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := cpuSample{at: t0, cpus: []cpuTimes{{busy: 10, idle: 5}, {busy: 1, idle: 20, steal: 1}}, procs: []float64{3, 7}}
	b := cpuSample{at: t0.Add(2 * time.Second), cpus: []cpuTimes{{busy: 11, idle: 6}, {busy: 3, idle: 20, steal: 1.2}}, procs: []float64{4.5, 7.1}}
	watched := namedPids{{"server", 1}, {"broker", 2}}
	want := " cpu0_busy=0.50 cpu0_steal=0.00 cpu1_busy=1.00 cpu1_steal=0.10 server_cores=0.75 broker_cores=0.05"
	if got := a.until(b, watched); got != want {
		t.Errorf("until =\n%q, want\n%q", got, want)
	}
	if got := b.until(a, watched); got != "" {
		t.Errorf("backwards: %q", got)
	}
}

func TestCPUSampler(t *testing.T) {
	s := startCPUSampler(20*time.Millisecond, namedPids{{"self", os.Getpid()}})
	time.Sleep(110 * time.Millisecond)
	samples := s.stop()
	// At least the first and the last; a loaded machine may delay ticks.
	if len(samples) < 2 {
		t.Fatalf("%d samples", len(samples))
	}
	for i := 1; i < len(samples); i++ {
		if !samples[i].at.After(samples[i-1].at) || len(samples[i].cpus) == 0 || len(samples[i].procs) != 1 {
			t.Fatalf("sample %d: %+v after %+v", i, samples[i], samples[i-1])
		}
	}
}
