package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// spoolQuota is the size of the spool's disk in TestSpoolDiskFull.
const spoolQuota = 2 << 20

// mountSmallDisk mounts a 2 MiB tmpfs on dir (root only) and unmounts it in
// cleanup; it reports whether that worked.
func mountSmallDisk(t *testing.T, dir string) (bool, string) {
	t.Helper()
	if os.Getenv("FAULTS_NO_TMPFS") == "1" {
		return false, "FAULTS_NO_TMPFS=1"
	}
	if os.Geteuid() != 0 {
		return false, "not root"
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", spoolQuota), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return false, strings.TrimSpace(string(out)) + ": " + err.Error()
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s; lazy unmount", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return true, ""
}

// The broker is down and the edge's spool disk fills up: a real 2 MiB
// tmpfs where the sandbox allows mounting (as root), else -spool-max-bytes
// as the quota. The edge must not crash, must keep answering with the GIF,
// must count what it cannot keep (dropped_total{reason="spool_full"}) and
// report not ready (/readyz 503). When the broker is back the spool drains,
// /readyz is 200 again and new hits are accepted and arrive. Every hit that
// was answered 200 but did not arrive must have been counted as dropped.
func TestSpoolDiskFull(t *testing.T) {
	b := faultBroker(t)
	if !edgeHas("-spool-dir") {
		t.Fatalf("the edge has no -spool-dir option: the disk spool has not landed")
	}
	ts := newTopics(t, b)
	s := newServices(t, b, ts)
	s.spoolDir = filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(s.spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	quota := fmt.Sprintf("a %d MiB tmpfs", spoolQuota>>20)
	if ok, why := mountSmallDisk(t, s.spoolDir); ok {
		// The disk, not the option, is the limit.
		s.edgeEnv = []string{fmt.Sprintf("EDGE_SPOOL_MAX_BYTES=%d", 64<<20)}
	} else {
		quota = fmt.Sprintf("-spool-max-bytes=%d (no tmpfs: %s)", spoolQuota, why)
		s.edgeEnv = []string{fmt.Sprintf("EDGE_SPOOL_MAX_BYTES=%d", spoolQuota)}
	}
	t.Logf("spool quota: %s", quota)
	s.startEnricher()
	edge := s.startEdge()

	// Warm-up: hits flow.
	warm := startLoad(t, loadSpec{name: "full", addr: s.edgeAddr, rate: 200, max: 100, maxDur: 10 * time.Second})
	warm.Wait()
	time.Sleep(time.Second)

	outageStart := time.Now()
	if err := b.stop(true); err != nil {
		t.Fatal(err)
	}
	// Big hits (1.5 KB of incompressible padding each) fill 2 MiB in seconds.
	fill := startLoad(t, loadSpec{name: "full", first: 100_000, addr: s.edgeAddr, rate: 400, pad: 1500,
		max: 400 * 40, maxDur: 40 * time.Second})
	var (
		fullAt      time.Time
		ready503    bool
		readyBody   string
		maxSpoolB   float64
		m           metrics
		spoolFullOK bool
	)
	for start := time.Now(); time.Since(start) < 40*time.Second; time.Sleep(500 * time.Millisecond) {
		if !edge.Alive() {
			t.Fatalf("the edge exited while its spool disk was full: %v", edge.Err())
		}
		m = s.edgeMetrics()
		maxSpoolB = max(maxSpoolB, m.sum(mSpoolBytes))
		if m.get(mDropped+`{reason="spool_full"}`) > 0 {
			spoolFullOK = true
		}
		if fullAt.IsZero() && m.sum(mDropped) > 0 {
			fullAt = time.Now()
		}
		if !fullAt.IsZero() {
			if code, body := s.edgeReady(); code == 503 {
				ready503, readyBody = true, body
			}
			if time.Since(fullAt) > 3*time.Second && ready503 {
				break
			}
		}
	}
	fill.Stop()
	lcFill := fill.counts()
	full := s.edgeMetrics()
	fullFor := time.Duration(0)
	if !fullAt.IsZero() {
		fullFor = time.Since(fullAt)
	}

	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	outage := time.Since(outageStart)
	s.enricherSurvived("the broker outage")
	drained := waitSpoolDrained(t, s, 90*time.Second)
	readyOK, readyLast := pollStatus(t, edge, "http://"+s.edgeAdmin+"/readyz", 200, 30*time.Second)
	readyAgain := time.Since(outageStart) - outage
	if !readyOK {
		t.Errorf("/readyz still not 200 %s after the broker came back and the spool drained (%v): %s",
			fmtDur(readyAgain), drained, readyLast)
	}

	after := startLoad(t, loadSpec{name: "full", first: 200_000, addr: s.edgeAddr, rate: 200, max: 200, maxDur: 10 * time.Second})
	after.Wait()
	lcAfter := after.counts()

	want, sent, wantAfter := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, l := range []*load{warm, fill, after} {
		l.accepted(want)
		l.sentPaths(sent)
	}
	after.accepted(wantAfter)
	end := s.edgeMetrics()
	dropped := end.sum(mDropped)
	a := s.waitArrivals(want, int(dropped), 60*time.Second, 2*time.Second, "the broker outage")

	lc := warm.counts()
	for _, c := range []loadCounts{lcFill, lcAfter} {
		lc.sent += c.sent
		lc.accepted += c.accepted
		lc.other += c.other
		lc.failed += c.failed
	}
	f := newFigures("spool-disk-full", lc, want, sent, a)
	f.outage = outage
	f.extra = fmt.Sprintf("quota: %s; while full (%s): sent=%d accepted=%d spool_bytes max=%g %s readyz=503:%v (%s); ready again: %v (%s after the broker); after: sent=%d accepted=%d arrived=%d; spool drained: %v; end: %s",
		quota, fmtDur(fullFor), lcFill.sent, lcFill.accepted, maxSpoolB, edgeSummary(full), ready503, readyBody,
		readyOK, fmtDur(readyAgain), lcAfter.sent, lcAfter.accepted, len(wantAfter)-a.missing(wantAfter), drained, edgeSummary(end))
	t.Log(f)

	if fullAt.IsZero() {
		t.Errorf("no hit was counted as dropped although the spool disk must have filled (%d big hits sent while the broker was down; %s)",
			lcFill.sent, edgeSummary(full))
	} else if !spoolFullOK {
		t.Errorf(`hits were dropped, but not as dropped_total{reason="spool_full"}: %s`, full.nonZero(mDropped))
	}
	if !ready503 {
		t.Errorf("/readyz never answered 503 while the spool was full")
	}
	if lcFill.accepted != lcFill.sent {
		t.Errorf("while the spool was full the edge answered %d of %d hits with something other than 200 + GIF (statuses %v, errors %v)",
			lcFill.sent-lcFill.accepted, lcFill.sent, lcFill.statuses, lcFill.errs)
	}
	if lcAfter.accepted != lcAfter.sent {
		t.Errorf("after recovery the edge accepted %d of %d hits", lcAfter.accepted, lcAfter.sent)
	}
	if n := a.missing(wantAfter); n > 0 {
		t.Errorf("%d of %d hits accepted after recovery never arrived", n, len(wantAfter))
	}
	if float64(f.lost) != dropped {
		t.Errorf("%d accepted hits never arrived but the edge counted %g as dropped (%s): every loss must be counted, and only losses",
			f.lost, dropped, end.nonZero(mDropped))
	}
	edge.Stop(t, 40*time.Second)
	s.enr.Stop(t, 40*time.Second)
}
