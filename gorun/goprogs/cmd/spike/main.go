// spike in the shape of gorun/workloads/spike.py: P0 holds `live` bytes of 1 KiB []byte chunks
// in one pointer slice, every P allocates churn/nprocs bytes of 1 KiB garbage, P0 grows the live
// set to `grow` once every P has finished, and `churn` more garbage follows. The phases are
// ordered with channels (a waiting goroutine is parked, as gorun's P waits inside g.blocking()).
// Every chunk's first byte is written, as gorun writes every object's header, so that fresh
// memory the allocator knows to be zero becomes resident as it does in gorun.
package main

import (
	"sync"

	"gorun.local/goprogs/internal/harness"
)

const chunk = 1024

var sinks [][]byte // one slot per P: the garbage escapes to the heap

func churn(id, nbytes int) int {
	n := nbytes / chunk
	for i := 0; i < n; i++ {
		b := make([]byte, chunk)
		b[0] = byte(i) // written, as gorun writes each object's header: its page is resident
		sinks[id] = b
	}
	return n
}

func main() {
	p := harness.ParseParams()
	live := p.Size("live", 16<<20)
	grow := p.Size("grow", 24<<20)
	churnBytes := p.Size("churn", 64<<20)
	p.Done()
	if live < chunk || grow < live || churnBytes < 0 {
		harness.Fail("need live >= 1024, grow >= live, churn >= 0")
	}
	harness.Run("spike", func() ([]string, any) {
		n := harness.Procs()
		sinks = make([][]byte, n)
		nLive, nGrow := live/chunk, grow/chunk
		phase1, grown := make(chan struct{}), make(chan struct{})
		var churned sync.WaitGroup
		churned.Add(n)
		var mu sync.Mutex
		var liveSet [][]byte
		counts := map[string]int{"live_chunks": 0, "grown_chunks": 0, "churn_chunks": 0}
		harness.RunPs(func(id, nprocs int) {
			share := churnBytes / nprocs
			if id == 0 {
				share += churnBytes % nprocs
				liveSet = make([][]byte, nGrow)
				for i := 0; i < nLive; i++ {
					liveSet[i] = make([]byte, chunk)
					liveSet[i][0] = byte(i)
				}
				close(phase1)
			} else {
				<-phase1
			}
			c := churn(id, share)
			churned.Done()
			if id == 0 {
				churned.Wait()
				for i := nLive; i < nGrow; i++ {
					liveSet[i] = make([]byte, chunk)
					liveSet[i][0] = byte(i)
				}
				close(grown)
			} else {
				<-grown
			}
			c += churn(id, share)
			sinks[id] = nil
			mu.Lock()
			counts["churn_chunks"] += c
			mu.Unlock()
		})
		counts["live_chunks"], counts["grown_chunks"] = nLive, nGrow-nLive
		liveSet = nil
		return nil, counts
	})
}
