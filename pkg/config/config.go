// Package config binds a service's options to command-line flags and
// environment variables in one place, so every option is settable both ways
// and the README's option table is generated from the same declarations.
//
// Precedence: a flag given on the command line wins over the environment
// variable, which wins over the default declared beside the field.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Option describes one declared option, for documentation.
type Option struct {
	Flag    string
	Env     string
	Default string
	Usage   string
}

// Set declares options of one service.
type Set struct {
	fs   *flag.FlagSet
	opts []Option
	envs map[string]string // flag name -> env var
}

// New returns an empty option set for the named service. Parse errors are
// returned, never printed and exited on, so main decides how to fail.
func New(name string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Set{fs: fs, envs: map[string]string{}}
}

func (s *Set) add(name, env, def, usage string) {
	if _, dup := s.envs[name]; dup {
		panic("config: duplicate option " + name)
	}
	s.envs[name] = env
	s.opts = append(s.opts, Option{Flag: name, Env: env, Default: def, Usage: usage})
}

// String declares a string option stored in p.
func (s *Set) String(p *string, name, env, def, usage string) {
	s.fs.StringVar(p, name, def, usage)
	s.add(name, env, def, usage)
}

// Int declares an integer option stored in p.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	s.fs.IntVar(p, name, def, usage)
	s.add(name, env, strconv.Itoa(def), usage)
}

// Int64 declares a 64-bit integer option stored in p (byte sizes).
func (s *Set) Int64(p *int64, name, env string, def int64, usage string) {
	s.fs.Int64Var(p, name, def, usage)
	s.add(name, env, strconv.FormatInt(def, 10), usage)
}

// Float64 declares a floating-point option stored in p.
func (s *Set) Float64(p *float64, name, env string, def float64, usage string) {
	s.fs.Float64Var(p, name, def, usage)
	s.add(name, env, strconv.FormatFloat(def, 'g', -1, 64), usage)
}

// Bool declares a boolean option stored in p.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, usage)
	s.add(name, env, strconv.FormatBool(def), usage)
}

// Duration declares a duration option (Go syntax: 250ms, 30s, 2h) stored in p.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.fs.DurationVar(p, name, def, usage)
	s.add(name, env, def.String(), usage)
}

// List declares a comma-separated list option stored in p. Empty elements
// and surrounding spaces are dropped.
func (s *Set) List(p *[]string, name, env string, def []string, usage string) {
	*p = append([]string(nil), def...)
	s.fs.Func(name, usage, func(v string) error {
		*p = SplitList(v)
		return nil
	})
	s.add(name, env, strings.Join(def, ","), usage)
}

// SplitList splits a comma-separated list, trimming spaces and dropping
// empty elements.
func SplitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// ErrHelp is returned by Parse when -h or -help was given; the usage text
// has been written to the writer passed to Parse.
var ErrHelp = flag.ErrHelp

// Parse reads args, then fills every option not given as a flag from its
// environment variable (looked up with getenv). An invalid value names the
// flag or variable it came from.
func (s *Set) Parse(args []string, getenv func(string) string, usage io.Writer) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.PrintUsage(usage)
		}
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", s.fs.Args())
	}
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, o := range s.opts {
		if given[o.Flag] || o.Env == "" {
			continue
		}
		if v := getenv(o.Env); v != "" {
			if err := s.fs.Set(o.Flag, v); err != nil {
				return fmt.Errorf("environment variable %s=%q: %w", o.Env, v, err)
			}
		}
	}
	return nil
}

// Options returns the declared options sorted by flag name.
func (s *Set) Options() []Option {
	out := append([]Option(nil), s.opts...)
	sort.Slice(out, func(i, j int) bool { return out[i].Flag < out[j].Flag })
	return out
}

// PrintUsage writes a plain-text list of options with their variables and
// defaults.
func (s *Set) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage of %s (every flag can also be set by its environment variable):\n", s.fs.Name())
	for _, o := range s.Options() {
		fmt.Fprintf(w, "  -%s  (%s, default %q)\n      %s\n", o.Flag, o.Env, o.Default, o.Usage)
	}
}

// Markdown renders the options as a Markdown table (flag, variable, default,
// meaning) for the README.
func (s *Set) Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment variable | default | meaning |\n|---|---|---|---|\n")
	for _, o := range s.Options() {
		def := o.Default
		if def == "" {
			def = "(empty)"
		}
		env := "`" + o.Env + "`"
		if o.Env == "" {
			env = "(flag only)"
		}
		fmt.Fprintf(&b, "| `-%s` | %s | `%s` | %s |\n", o.Flag, env, def, strings.ReplaceAll(o.Usage, "|", "\\|"))
	}
	return b.String()
}
