// GCBench in the shape of gorun/workloads/gcbench.py (Boehm's benchmark): P0 builds a stretch
// tree; every P builds a long-lived tree (top-down) and a long-lived array of doubles, then
// trees of growing depth top-down (populate) and bottom-up (makeTree), the iterations of each
// depth split across the P's; at the end the long-lived data is checked.
package main

import (
	"sync"

	"gorun.local/goprogs/internal/harness"
)

type node struct {
	left, right *node
	i, j        int
}

func treeSize(i int) int { return (1 << (i + 1)) - 1 }

func populate(depth int, n *node) {
	if depth <= 0 {
		return
	}
	depth--
	n.left = &node{}
	n.right = &node{}
	populate(depth, n.left)
	populate(depth, n.right)
}

func makeTree(depth int) *node {
	n := &node{}
	if depth > 0 {
		n.left = makeTree(depth - 1)
		n.right = makeTree(depth - 1)
	}
	return n
}

func count(n *node) int {
	if n.left == nil {
		return 1
	}
	return 1 + count(n.left) + count(n.right)
}

var sink []*node // one slot per P: the trees built are heap objects, as gorun's are

func main() {
	p := harness.ParseParams()
	stretch := p.Int("stretch", 14)
	longLived := p.Int("long_lived", 12)
	array := p.Int("array", 50000)
	minDepth := p.Int("min_depth", 4)
	maxDepth := p.Int("max_depth", 12)
	p.Done()
	if !(0 < minDepth && minDepth <= maxDepth && maxDepth <= stretch && stretch <= 22) || longLived > 22 || longLived < 0 || array < 0 {
		harness.Fail("need 0 < min_depth <= max_depth <= stretch <= 22, long_lived <= 22, array >= 0")
	}
	harness.Run("gcbench", func() ([]string, any) {
		sink = make([]*node, harness.Procs())
		var mu sync.Mutex
		var stretchNodes, longLivedNodes int
		harness.RunPs(func(id, nprocs int) {
			if id == 0 {
				stretchNodes = count(makeTree(stretch))
			}
			ll := &node{}
			populate(longLived, ll)
			arr := make([]float64, array)
			for i := 0; i < array/2; i++ {
				arr[i] = 1.0 / float64(i+1)
			}
			for d := minDepth; d <= maxDepth; d += 2 {
				iters := 2 * treeSize(stretch) / treeSize(d)
				for i := id; i < iters; i += nprocs { // top-down
					t := &node{}
					sink[id] = t
					populate(d, t)
				}
				for i := id; i < iters; i += nprocs { // bottom-up
					sink[id] = makeTree(d)
				}
			}
			sink[id] = nil
			if count(ll) != treeSize(longLived) || (array > 1000 && arr[1000] != 1.0/1001) {
				panic("gcbench: the long-lived data was damaged")
			}
			mu.Lock()
			longLivedNodes += count(ll)
			mu.Unlock()
		})
		return nil, map[string]int{"stretch_nodes": stretchNodes, "long_lived_nodes": longLivedNodes}
	})
}
