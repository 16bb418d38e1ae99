package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuSeconds returns utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	return statFileCPU(fmt.Sprintf("/proc/%d/stat", pid))
}

// statFileCPU returns utime+stime from a process's or a thread's stat file.
func statFileCPU(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name is in parentheses and may contain spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad %s", path)
	}
	f := strings.Fields(s[i+1:])
	// After ")": state(0) ppid(1) … utime is field 14 of stat, index 11 here.
	if len(f) < 13 {
		return 0, fmt.Errorf("short %s", path)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad times in %s", path)
	}
	return (ut + st) / clockTicks, nil
}

// machineTimes returns the machine's idle CPU time (idle + iowait) and the
// time the hypervisor gave its CPUs to other guests (steal), in seconds,
// all CPUs summed (perCPUTimes).
func machineTimes() (idle, steal float64, err error) {
	cpus, err := perCPUTimes()
	if err != nil {
		return 0, 0, err
	}
	for _, c := range cpus {
		idle += c.idle
		steal += c.steal
	}
	return idle, steal, nil
}

// statusKB returns a "Vm…:  N kB" field of /proc/<pid>/status.
func statusKB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v := strings.Fields(rest)
			if len(v) == 0 {
				break
			}
			return strconv.Atoi(v[0])
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

func cmdProc(args []string) error {
	fs := flag.NewFlagSet("proc", flag.ExitOnError)
	pid := fs.Int("pid", 0, "process id")
	prefix := fs.String("prefix", "", "prefix of the printed keys")
	_ = fs.Parse(args)
	hwm, err := statusKB(*pid, "VmHWM")
	if err != nil {
		return err
	}
	rss, _ := statusKB(*pid, "VmRSS")
	cpu, _ := cpuSeconds(*pid)
	fmt.Printf("%svmhwm_mib=%.1f %svmrss_mib=%.1f %scpu_s=%.2f\n", *prefix, float64(hwm)/1024, *prefix, float64(rss)/1024, *prefix, cpu)
	return nil
}

// namedPid is a process whose CPU a measurement reports under name.
type namedPid struct {
	name string
	pid  int
}

// namedPids is a list of processes to measure together.
type namedPids []namedPid

// parseNamedPids parses "name=pid,name=pid"; an empty string is no process.
func parseNamedPids(s string) (namedPids, error) {
	var out namedPids
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		name, pidText, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(pidText)
		if !ok || name == "" || err != nil || pid <= 0 {
			return nil, fmt.Errorf("want name=pid, got %q", kv)
		}
		out = append(out, namedPid{name, pid})
	}
	return out, nil
}

// cpu returns each process's CPU seconds so far (0 for one that is gone).
func (ps namedPids) cpu() []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i], _ = cpuSeconds(p.pid)
	}
	return out
}

// threadCPU returns the CPU seconds (utime+stime) of pid's live threads,
// summed by thread name with digits replaced by N, so a JVM's pools add up:
// "data-plane-kafka-request-handler-3" and "-4" become one group (the
// kernel keeps 15 bytes of a name), "C2 CompilerThread0" and "C1 …" are
// "CN CompilerThreadN", "G1 Conc#0" is "GN Conc#N".
func threadCPU(pid int) (map[string]float64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, 16)
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("%s/%d/comm", dir, tid))
		if err != nil {
			continue // the thread ended meanwhile
		}
		s, err := statFileCPU(fmt.Sprintf("%s/%d/stat", dir, tid))
		if err != nil {
			continue
		}
		out[threadGroup(strings.TrimSpace(string(comm)))] += s
	}
	return out, nil
}

// threadGroup is a thread name with each run of digits replaced by N and
// spaces by underscores, for key=value output.
func threadGroup(name string) string {
	var b strings.Builder
	digits := false
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
			if !digits {
				b.WriteByte('N')
			}
			digits = true
			continue
		case r == ' ':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
		digits = false
	}
	return b.String()
}

// threadCores formats the top groups of the growth from a to b over el
// seconds as "group:cores,…", largest first.
func threadCores(a, b map[string]float64, el float64, top int) string {
	type g struct {
		name  string
		cores float64
	}
	var gs []g
	for k, v := range b {
		if d := (v - a[k]) / el; d >= 0.005 {
			gs = append(gs, g{k, d})
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].cores > gs[j].cores })
	var parts []string
	for i := 0; i < len(gs) && i < top; i++ {
		parts = append(parts, fmt.Sprintf("%s:%.2f", gs[i].name, gs[i].cores))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// cpuTimes is one CPU's line of /proc/stat: seconds not idle (user, nice,
// system, irq, softirq), idle (idle, iowait) and stolen by the hypervisor.
type cpuTimes struct{ busy, idle, steal float64 }

// perCPUTimes returns the times of every CPU ("cpuN" lines of /proc/stat),
// indexed by N.
func perCPUTimes() ([]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	var out []cpuTimes
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || len(f[0]) < 4 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue // the "cpu" total
		}
		var v [8]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(f[i+1], 64); err != nil {
				return nil, fmt.Errorf("unexpected /proc/stat: %q", line)
			}
		}
		for len(out) <= n {
			out = append(out, cpuTimes{})
		}
		// user nice system idle iowait irq softirq steal
		out[n] = cpuTimes{
			busy:  (v[0] + v[1] + v[2] + v[5] + v[6]) / clockTicks,
			idle:  (v[3] + v[4]) / clockTicks,
			steal: v[7] / clockTicks,
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cpuN lines in /proc/stat")
	}
	return out, nil
}
