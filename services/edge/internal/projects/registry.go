package projects

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Registry serves the current Set and replaces it when the projects file
// changes. Lookups are a pointer load and a map read.
type Registry struct {
	cur    atomic.Pointer[Set]
	static []Spec
	path   string
	log    *zap.Logger

	// last is the file state of the last read attempt, good or bad: a bad
	// file is reported once, not on every poll, and re-read when it changes.
	last fileState

	reloads      *prometheus.CounterVec
	reloadOK     prometheus.Counter
	reloadFailed prometheus.Counter
	lastSuccess  prometheus.Gauge
}

type fileState struct {
	modTime time.Time
	size    int64
}

// NewRegistry loads the projects file at path (if not empty) merged with the
// static specs from the command line. The first load must succeed: an edge
// that starts with a broken file would reject every hit. Metrics are
// registered on reg.
func NewRegistry(path string, static []Spec, reg prometheus.Registerer, log *zap.Logger) (*Registry, error) {
	r := &Registry{
		static: static,
		path:   path,
		log:    log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pixelstream_edge_projects_reloads_total",
			Help: "Projects file reloads by result (ok, error). A failed reload keeps the previous projects.",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pixelstream_edge_projects_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful projects load.",
		}),
	}
	r.reloadOK = r.reloads.WithLabelValues("ok")
	r.reloadFailed = r.reloads.WithLabelValues("error")
	if err := r.load(); err != nil {
		return nil, err
	}
	keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pixelstream_edge_api_keys",
		Help: "API keys currently accepted.",
	}, func() float64 { return float64(r.Current().Keys()) })
	projects := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pixelstream_edge_projects",
		Help: "Projects currently loaded.",
	}, func() float64 { return float64(r.Current().Projects()) })
	for _, c := range []prometheus.Collector{r.reloads, r.lastSuccess, keys, projects} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Current returns the Set in force.
func (r *Registry) Current() *Set { return r.cur.Load() }

// Lookup returns the project owning key in the current Set, or nil.
func (r *Registry) Lookup(key []byte) *Project { return r.cur.Load().Lookup(key) }

// LookupKey returns key's entry in the current Set, or nil.
func (r *Registry) LookupKey(key []byte) *Key { return r.cur.Load().LookupKey(key) }

// load reads the file (if any), builds a Set and swaps it in.
func (r *Registry) load() error {
	var fileSpecs []Spec
	if r.path != "" {
		st, err := os.Stat(r.path)
		if err != nil {
			return fmt.Errorf("projects file: %w", err)
		}
		r.last = fileState{st.ModTime(), st.Size()}
		data, err := os.ReadFile(r.path)
		if err != nil {
			return fmt.Errorf("projects file: %w", err)
		}
		if fileSpecs, err = ParseFile(r.path, data); err != nil {
			return err
		}
	}
	set, err := Build(r.static, fileSpecs)
	if err != nil {
		if r.path != "" {
			return fmt.Errorf("projects file %s: %w", r.path, err)
		}
		return err
	}
	set.InheritBuckets(r.cur.Load())
	r.cur.Store(set)
	r.lastSuccess.SetToCurrentTime()
	return nil
}

// Reload re-reads the projects file if its modification time or size
// changed since the last attempt. On error the current Set stays in force;
// the error is returned, logged and counted. It reports whether a new Set
// was installed.
func (r *Registry) Reload() (bool, error) {
	if r.path == "" {
		return false, nil
	}
	st, err := os.Stat(r.path)
	if err == nil && (fileState{st.ModTime(), st.Size()}) == r.last {
		return false, nil
	}
	if err == nil {
		err = r.load()
	} else {
		err = fmt.Errorf("projects file: %w", err)
		// Remember the missing file so the error is reported once; the
		// zero state never matches a file that reappears.
		r.last = fileState{size: -1}
	}
	if err != nil {
		r.reloadFailed.Inc()
		r.log.Error("projects reload failed; keeping the previous projects", zap.Error(err))
		return false, err
	}
	r.reloadOK.Inc()
	cur := r.Current()
	r.log.Info("projects reloaded", zap.String("file", r.path),
		zap.Int("projects", cur.Projects()), zap.Int("keys", cur.Keys()))
	return true, nil
}

// Run polls the projects file every interval until ctx is done. Polling
// (rather than inotify) also follows the symlink swaps of Kubernetes
// ConfigMap volumes and works on every file system.
func (r *Registry) Run(ctx context.Context, interval time.Duration) {
	if r.path == "" || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.Reload()
		}
	}
}
