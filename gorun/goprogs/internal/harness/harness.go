// Package harness is what the Go twins of gorun's workloads share: the -p NAME=VALUE parameters
// (the syntax of gorun's `-p`, sizes such as 256MiB as gorun/units.py reads them), the P count
// (GOMAXPROCS), running one function per P on its own goroutine, and the report: one JSON line
// on stdout with the wall time, the allocation and GC figures from runtime/metrics (histograms
// included, as metrics.Float64Histogram with the infinite ends written "-Inf" and "+Inf"), and the
// workload's check lines. gorun/compare.py builds these programs and reads that line.
package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Params holds the -p NAME=VALUE arguments given on the command line.
type Params struct {
	raw  map[string]string
	used map[string]bool
}

var sizeRe = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$`)

var sizeUnits = map[string]float64{
	"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
}

// Fail prints one line on stderr and exits 2 (bad input).
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(2)
}

// ParseParams reads os.Args: "-p" "name=value" pairs (or "name=value" alone).
func ParseParams() *Params {
	p := &Params{raw: map[string]string{}, used: map[string]bool{}}
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-p" {
			if i+1 >= len(args) {
				Fail("-p needs NAME=VALUE")
			}
			i++
			a = args[i]
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			Fail("bad parameter %q: expected name=value", a)
		}
		p.raw[k] = v
	}
	return p
}

func (p *Params) get(name string) (string, bool) {
	p.used[name] = true
	v, ok := p.raw[name]
	return v, ok
}

// Int is a count (digits only).
func (p *Params) Int(name string, def int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		Fail("bad value %q for parameter %s: need an integer", v, name)
	}
	return n
}

// Size is a byte count with an optional unit, as gorun/units.py parse_size.
func (p *Params) Size(name string, def int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	m := sizeRe.FindStringSubmatch(v)
	if m == nil {
		Fail("bad value %q for parameter %s: need a size", v, name)
	}
	mul, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		Fail("bad value %q for parameter %s: need a size", v, name)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return int(f * mul)
}

// Float is a number.
func (p *Params) Float(name string, def float64) float64 {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) {
		Fail("bad value %q for parameter %s: need a number", v, name)
	}
	return f
}

// Done refuses parameters the workload does not have (call after reading them all).
func (p *Params) Done() {
	for k := range p.raw {
		if !p.used[k] {
			Fail("no parameter %q", k)
		}
	}
}

// Procs is the number of P's: GOMAXPROCS, one goroutine per P as gorun has one worker per P.
func Procs() int { return runtime.GOMAXPROCS(0) }

// RunPs runs fn(id, nprocs) on one goroutine per P and waits for all of them.
func RunPs(fn func(id, nprocs int)) {
	n := Procs()
	var wg sync.WaitGroup
	for id := 0; id < n; id++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			fn(id, n)
		}(id)
	}
	wg.Wait()
}

type histogram struct {
	Buckets []any    `json:"buckets"`
	Counts  []uint64 `json:"counts"`
}

func bound(f float64) any {
	switch {
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsInf(f, 1):
		return "+Inf"
	}
	return f
}

// readMetrics returns every supported runtime/metrics value by name, in Go's units.
func readMetrics() map[string]any {
	descs := metrics.All()
	samples := make([]metrics.Sample, len(descs))
	for i, d := range descs {
		samples[i].Name = d.Name
	}
	metrics.Read(samples)
	out := make(map[string]any, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			out[s.Name] = s.Value.Uint64()
		case metrics.KindFloat64:
			out[s.Name] = s.Value.Float64()
		case metrics.KindFloat64Histogram:
			h := s.Value.Float64Histogram()
			b := make([]any, len(h.Buckets))
			for i, x := range h.Buckets {
				b[i] = bound(x)
			}
			out[s.Name] = histogram{Buckets: b, Counts: append([]uint64(nil), h.Counts...)}
		}
	}
	return out
}

func u64(m map[string]any, name string) uint64 {
	v, _ := m[name].(uint64)
	return v
}

func f64(m map[string]any, name string) float64 {
	v, _ := m[name].(float64)
	return v
}

// peakRSS is the process's peak resident set (VmHWM of /proc/self/status; 0 if unreadable).
// Not ru_maxrss seen by the parent: that also counts the forked parent's memory before exec.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// Report is the one JSON line a program prints.
type Report struct {
	Workload      string         `json:"workload"`
	GoVersion     string         `json:"go_version"`
	Procs         int            `json:"procs"`
	WallNs        int64          `json:"wall_ns"`
	Objects       uint64         `json:"objects"`
	Bytes         uint64         `json:"bytes"`
	Cycles        uint64         `json:"cycles"`
	Forced        uint64         `json:"forced"`
	GCCPUFraction float64        `json:"gc_cpu_fraction"`
	PeakRSSBytes  uint64         `json:"peak_rss_bytes"`
	Heap          map[string]any `json:"heap"`
	Check         []string       `json:"check"`
	Result        any            `json:"result"`
	Metrics       map[string]any `json:"metrics"`
}

// Run times body (the whole workload) and prints the report. body returns the check lines and
// a result value of the workload's own (counts, as gorun's workload returns).
func Run(name string, body func() ([]string, any)) {
	start := time.Now()
	check, result := body()
	wall := time.Since(start)
	m := readMetrics()
	gcCPU, total := f64(m, "/cpu/classes/gc/total:cpu-seconds"), f64(m, "/cpu/classes/total:cpu-seconds")
	frac := 0.0
	if total > 0 {
		frac = gcCPU / total
	}
	if check == nil {
		check = []string{}
	}
	r := Report{
		Workload:      name,
		GoVersion:     runtime.Version(),
		Procs:         Procs(),
		WallNs:        wall.Nanoseconds(),
		Objects:       u64(m, "/gc/heap/allocs:objects"),
		Bytes:         u64(m, "/gc/heap/allocs:bytes"),
		Cycles:        u64(m, "/gc/cycles/total:gc-cycles"),
		Forced:        u64(m, "/gc/cycles/forced:gc-cycles"),
		GCCPUFraction: frac,
		PeakRSSBytes:  peakRSS(),
		Heap: map[string]any{
			"goal":         u64(m, "/gc/heap/goal:bytes"),
			"live":         u64(m, "/gc/heap/live:bytes"),
			"objects":      u64(m, "/gc/heap/objects:objects"),
			"total_memory": u64(m, "/memory/classes/total:bytes") - u64(m, "/memory/classes/heap/released:bytes"),
			"released":     u64(m, "/memory/classes/heap/released:bytes"),
			"gogc":         u64(m, "/gc/gogc:percent"),
			"memory_limit": u64(m, "/gc/gomemlimit:bytes"),
		},
		Check:   check,
		Result:  result,
		Metrics: m,
	}
	out, err := json.Marshal(r)
	if err != nil {
		Fail("report: %v", err)
	}
	os.Stdout.Write(append(out, '\n'))
}
