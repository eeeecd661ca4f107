// Package redisserver runs the in-process Redis used by the embedded default
// when no REDIS_URL is configured. It imports no domain package.
package redisserver

import (
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// tick is how often key TTLs advance. Expiry is this coarse: a unique-task
// lock or scheduler lease outlives its TTL by at most one tick.
const tick = 250 * time.Millisecond

// Server is an in-process Redis listening on loopback.
type Server struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	done sync.WaitGroup
}

// Start starts an in-process Redis on addr ("127.0.0.1:0" picks a free port).
// Keys expire on the wall clock, so asynq's unique-task locks and the
// scheduler lease time out as they would on a real Redis. (miniredis's
// ClockTTL would do the same on every command, at the cost of walking all
// keys each time; a ticker does it four times a second.)
func Start(addr string) (*Server, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("start in-process redis on %s: %w", addr, err)
	}
	s := &Server{m: m, stop: make(chan struct{})}
	s.done.Add(1)
	go s.expire()
	return s, nil
}

func (s *Server) expire() {
	defer s.done.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.m.Addr() }

// Close stops the server.
func (s *Server) Close() {
	close(s.stop)
	s.done.Wait()
	s.m.Close()
}
