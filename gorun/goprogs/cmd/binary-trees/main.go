// binary-trees in the shape of gorun/workloads/binary_trees.py: a stretch tree, a long-lived
// tree, then short-lived trees of growing depth, each walked for a check count. The iterations
// of every depth are split across the P's (goroutine id takes id, id+n, ...); P0 also builds the
// stretch and the long-lived trees. The check lines are gorun's, from the combined results.
package main

import (
	"fmt"
	"sort"
	"sync"

	"gorun.local/goprogs/internal/harness"
)

type node struct{ left, right *node }

const minDepth = 4

func bottomUp(depth int) *node {
	n := &node{}
	if depth > 0 {
		n.left = bottomUp(depth - 1)
		n.right = bottomUp(depth - 1)
	}
	return n
}

func (n *node) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

type row struct{ iters, check int }

func main() {
	p := harness.ParseParams()
	depth := p.Int("depth", 14)
	p.Done()
	if depth < 0 || depth > 24 {
		harness.Fail("bad value %d for parameter depth of binary-trees: need an integer in 0..24", depth)
	}
	maxDepth := max(minDepth+2, depth)
	harness.Run("binary-trees", func() ([]string, any) {
		var mu sync.Mutex
		rows := map[int]*row{}
		var stretchCheck, longCheck int
		harness.RunPs(func(id, nprocs int) {
			if id == 0 {
				stretchCheck = bottomUp(maxDepth + 1).check()
			}
			var longLived *node
			if id == 0 {
				longLived = bottomUp(maxDepth)
			}
			for d := minDepth; d <= maxDepth; d += 2 {
				iterations := 1 << (maxDepth - d + minDepth)
				chk, mine := 0, 0
				for i := id; i < iterations; i += nprocs {
					chk += bottomUp(d).check()
					mine++
				}
				mu.Lock()
				r := rows[d]
				if r == nil {
					r = &row{}
					rows[d] = r
				}
				r.iters += mine
				r.check += chk
				mu.Unlock()
			}
			if id == 0 {
				longCheck = longLived.check()
			}
		})
		lines := []string{fmt.Sprintf("stretch tree of depth %d\t check: %d", maxDepth+1, stretchCheck)}
		depths := make([]int, 0, len(rows))
		for d := range rows {
			depths = append(depths, d)
		}
		sort.Ints(depths)
		for _, d := range depths {
			lines = append(lines, fmt.Sprintf("%d\t trees of depth %d\t check: %d", rows[d].iters, d, rows[d].check))
		}
		lines = append(lines, fmt.Sprintf("long lived tree of depth %d\t check: %d", maxDepth, longCheck))
		return lines, map[string]int{"max_depth": maxDepth, "stretch_check": stretchCheck, "long_check": longCheck}
	})
}
