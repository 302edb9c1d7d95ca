// graph in the shape of gorun/workloads/graph.py: the P's mutate one random object graph through
// shared globals and verify it. Every node carries its id, a checksum of it and a noscan blob of
// its id's bytes; some hold a []*node slice. Each step allocates, links, unlinks, publishes a node
// to a random global, takes one from a global, or drops a handle; every `verify_every` steps the P
// walks everything reachable from its handles and all globals and checks every node it meets.
// Edges and globals are atomic pointers (the P's share them, as gorun's P's share the heap).
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"gorun.local/goprogs/internal/harness"
)

type node struct {
	id, check int64
	e0, e1    atomic.Pointer[node]
	e2        []*node
	blob      []byte
}

const nGlobalSlots = 1024 // gorun's default global slots

var globals [nGlobalSlots]atomic.Pointer[node]

const mask = 1<<63 - 1

func checksum(i int64) int64 {
	return int64((uint64(i)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & mask)
}

func blobBytes(i int64, n int) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return bytes.Repeat(b[:], n/8+1)[:n]
}

func verify(n *node) {
	if n.check != checksum(n.id) {
		fmt.Fprintf(os.Stderr, "graph: node %d has a bad checksum %#x\n", n.id, n.check)
		os.Exit(1)
	}
	if len(n.blob) == 0 || !bytes.Equal(n.blob, blobBytes(n.id, len(n.blob))) {
		fmt.Fprintf(os.Stderr, "graph: node %d has a damaged blob\n", n.id)
		os.Exit(1)
	}
}

func walk(roots []*node, limit int) int {
	seen := map[*node]bool{}
	stack := append([]*node(nil), roots...)
	checked := 0
	for len(stack) > 0 && checked < limit {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		checked++
		verify(n)
		stack = append(stack, n.e0.Load(), n.e1.Load())
		stack = append(stack, n.e2...)
	}
	return checked
}

var blobSizes = []int{3, 7, 13, 24, 40, 100}

func main() {
	p := harness.ParseParams()
	steps := p.Int("steps", 200000)
	live := p.Int("live", 64)
	nglobals := min(p.Int("nglobals", 64), nGlobalSlots)
	verifyEvery := p.Int("verify_every", 5000)
	walkLimit := p.Int("walk_limit", 100000)
	gcEvery := p.Int("gc_every", 0)
	p.Done()
	if steps < 0 || live < 0 || nglobals < 1 || verifyEvery < 0 || walkLimit < 0 || gcEvery < 0 {
		harness.Fail("graph parameters must be >= 0 (nglobals >= 1)")
	}
	harness.Run("graph", func() ([]string, any) {
		var mu sync.Mutex
		total := map[string]int{}
		harness.RunPs(func(id, nprocs int) {
			rnd := rand.New(rand.NewSource(int64(id)))
			var local []*node
			seq := int64(0)
			st := map[string]int{}
			newNode := func() *node {
				seq++
				i := int64(id)<<40 | seq
				n := &node{id: i, check: checksum(i), blob: blobBytes(i, blobSizes[rnd.Intn(len(blobSizes))])}
				if rnd.Float64() < 0.05 {
					arr := make([]*node, 1+rnd.Intn(8))
					for k := range arr {
						if len(local) > 0 && rnd.Float64() < 0.7 {
							arr[k] = local[rnd.Intn(len(local))]
						}
					}
					n.e2 = arr
				}
				st["allocs"]++
				return n
			}
			roots := func() []*node {
				r := append([]*node(nil), local...)
				for k := 0; k < nglobals; k++ {
					r = append(r, globals[k].Load())
				}
				return r
			}
			drop := func(k int) {
				local[k] = local[len(local)-1]
				local = local[:len(local)-1]
			}
			for step := 0; step < steps; step++ {
				r := rnd.Float64()
				switch {
				case r < 0.30 || len(local) < 4:
					local = append(local, newNode())
				case r < 0.50:
					x, y := local[rnd.Intn(len(local))], local[rnd.Intn(len(local))]
					if rnd.Float64() < 0.5 {
						x.e0.Store(y)
					} else {
						x.e1.Store(y)
					}
					st["links"]++
				case r < 0.60:
					local[rnd.Intn(len(local))].e0.Store(nil)
					st["unlinks"]++
				case r < 0.75:
					globals[rnd.Intn(nglobals)].Store(local[rnd.Intn(len(local))])
					st["publish"]++
				case r < 0.88:
					if h := globals[rnd.Intn(nglobals)].Load(); h != nil {
						verify(h)
						local = append(local, h)
					}
					st["take"]++
				default:
					drop(rnd.Intn(len(local)))
					st["drops"]++
				}
				for len(local) > live {
					drop(rnd.Intn(len(local)))
				}
				if verifyEvery > 0 && step%verifyEvery == verifyEvery-1 {
					st["checked"] += walk(roots(), walkLimit)
					st["walks"]++
				}
				if gcEvery > 0 && step%gcEvery == gcEvery-1 {
					runtime.GC()
					st["gcs"]++
				}
			}
			st["checked"] += walk(roots(), walkLimit)
			st["walks"]++
			mu.Lock()
			for k, v := range st {
				total[k] += v
			}
			mu.Unlock()
		})
		return nil, total
	})
}
