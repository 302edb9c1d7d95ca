// alloc in the shape of gorun/workloads/alloc.py: every P allocates a mix of tiny (1-14 B
// noscan), small (16 B .. max_small, log-uniform, a `scan` fraction of them pointer slices of
// n/8 elements) and large (32 KiB .. max_large) objects until `budget` bytes per P are spent,
// holding the last `keep` objects live in a ring of its own. The first byte of every []byte is
// written, as gorun writes every object's header (fresh zeroed memory becomes resident).
package main

import (
	"math"
	"math/rand"
	"sync"

	"gorun.local/goprogs/internal/harness"
)

const maxSmallPayload = 32760 // gorun's largest small payload (32 KiB class less its 8-byte header)
const minLarge = 32768        // the smallest request gorun serves as a large object

func main() {
	p := harness.ParseParams()
	budget := p.Size("budget", 256<<20)
	tiny := p.Float("tiny", 0.3)
	large := p.Float("large", 0.002)
	scan := p.Float("scan", 0.3)
	maxSmall := p.Size("max_small", 4096)
	maxLarge := p.Size("max_large", 256<<10)
	keep := p.Int("keep", 20000)
	p.Done()
	if tiny < 0 || tiny > 1 || large < 0 || large > 1 || tiny+large > 1 || scan < 0 || scan > 1 {
		harness.Fail("fractions tiny, large, scan must be in [0, 1] with tiny + large <= 1")
	}
	if maxSmall < 16 || maxSmall > maxSmallPayload || maxLarge < minLarge || keep < 0 {
		harness.Fail("need 16 <= max_small <= %d, max_large >= %d, keep >= 0", maxSmallPayload, minLarge)
	}
	harness.Run("alloc", func() ([]string, any) {
		var mu sync.Mutex
		total := map[string]int{"tiny": 0, "small": 0, "large": 0, "scan": 0, "bytes": 0}
		lo, hi := math.Log(16), math.Log(float64(maxSmall))
		harness.RunPs(func(id, nprocs int) {
			rng := rand.New(rand.NewSource(int64(id)))
			var ring []any
			if keep > 0 {
				ring = make([]any, keep)
			}
			c := map[string]int{}
			spent, i := 0, 0
			for spent < budget {
				var h any
				var n int
				x := rng.Float64()
				switch {
				case x < tiny:
					n = 1 + rng.Intn(14)
					b := make([]byte, n)
					b[0] = 1
					h = &b[0]
					c["tiny"]++
				case x < tiny+large:
					n = minLarge + rng.Intn(maxLarge-minLarge+1)
					b := make([]byte, n)
					b[0] = 1
					h = &b[0]
					c["large"]++
				default:
					n = int(math.Exp(lo + rng.Float64()*(hi-lo)))
					if rng.Float64() < scan {
						a := make([]*int, max(n/8, 1))
						h = &a[0]
						c["scan"]++
					} else {
						b := make([]byte, n)
						b[0] = 1
						h = &b[0]
					}
					c["small"]++
				}
				spent += n
				if ring != nil {
					ring[i%keep] = h
					i++
				}
			}
			c["bytes"] = spent
			mu.Lock()
			for k, v := range c {
				total[k] += v
			}
			mu.Unlock()
		})
		return nil, total
	})
}
