package access

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseTick is how often the coarse clock reads the time: the precision
// of the times of decision events under the default clock.
const coarseTick = time.Millisecond

// coarseClock is the clock of decision events when the host kept the
// default clock: reading the time costs 25-100 ns on virtual machines,
// more than the rest of a check, so a goroutine reads it every coarseTick
// and checks load the last reading. The goroutine runs only while the
// Checker is open.
type coarseClock struct {
	ns   atomic.Int64
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startCoarseClock() *coarseClock {
	c := &coarseClock{stop: make(chan struct{}), done: make(chan struct{})}
	c.ns.Store(time.Now().UnixNano())
	go func() {
		defer close(c.done)
		t := time.NewTicker(coarseTick)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				c.ns.Store(now.UnixNano())
			}
		}
	}()
	return c
}

// now returns the last reading, at most about coarseTick old.
func (c *coarseClock) now() time.Time { return time.Unix(0, c.ns.Load()) }

// close stops the clock's goroutine; idempotent.
func (c *coarseClock) close() {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
	})
}
