package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is the result of one measured phase.
type Phase struct {
	Name       string  `json:"name"`
	Mode       string  `json:"mode"`
	TargetRate float64 `json:"target_rate,omitempty"`
	Seconds    float64 `json:"seconds"`
	Requests   int64   `json:"requests"`
	Counts
	// Rate is completed operations (any decision, errors excluded) per
	// second of the phase.
	Rate float64 `json:"rate"`
	Latency
	ServerCPU   float64 `json:"server_cpu_cores,omitempty"`
	ServerRSSMB float64 `json:"server_peak_rss_mb,omitempty"`
	// StoreCPU is the cores PostgreSQL and Redis used on this machine
	// (PostgreSQL + Redis only: the embedded stores are the server's).
	StoreCPU float64 `json:"store_cpu_cores,omitempty"`
	// CPUPerOpMs is server and store CPU per decision of the phase, in
	// milliseconds; it includes whatever else the server did meanwhile
	// (the syncs of the sign-ins an ingest phase posts, for one).
	CPUPerOpMs float64 `json:"cpu_per_op_ms,omitempty"`
	// StatementsPerOp is the server's database round trips per decision.
	StatementsPerOp float64 `json:"statements_per_op,omitempty"`
	// Email is the latency from a sign-in to its guest email being
	// captured (the quiet phase, embedded mail only).
	Email      *Latency         `json:"email_latency,omitempty"`
	ClientCPU  float64          `json:"client_cpu_cores,omitempty"`
	ErrorCodes map[string]int64 `json:"error_statuses,omitempty"`
	FirstError string           `json:"first_error,omitempty"`
	Note       string           `json:"note,omitempty"`
}

// op is one operation of a phase; i counts from 0.
type op func(ctx context.Context, i int) (outcome, int, string)

// load says how a phase is driven: paced at Rate per second (latency taken
// from each operation's scheduled start, so a stalled server cannot hide
// its queueing), or closed-loop with Concurrency workers when Rate is 0.
// It stops after Count operations or Duration, whichever comes first.
type load struct {
	Rate        float64
	Concurrency int
	Duration    time.Duration
	Count       int
}

func (b *Bench) drive(ctx context.Context, name string, l load, fn op) Phase {
	rec := newRecorder()
	var issued atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	win := b.procs.begin()
	stopProgress := b.progress(name, rec, &issued)
	start := time.Now()
	deadline := start.Add(l.Duration)
	count := l.Count
	if count <= 0 {
		count = int(^uint(0) >> 1)
	}
	conc := max(l.Concurrency, 1)
	var wg sync.WaitGroup
	if l.Rate <= 0 {
		var next atomic.Int64
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && time.Now().Before(deadline) {
					i := int(next.Add(1) - 1)
					if i >= count {
						return
					}
					issued.Add(1)
					t0 := time.Now()
					o, st, msg := fn(ctx, i)
					rec.add(time.Since(t0), o, st, msg)
				}
			}()
		}
	} else {
		type slot struct {
			i  int
			at time.Time
		}
		work := make(chan slot, conc)
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := range work {
					o, st, msg := fn(ctx, s.i)
					rec.add(time.Since(s.at), o, st, msg)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / l.Rate)
	pace:
		for i := 0; i < count; i++ {
			at := start.Add(time.Duration(i) * interval)
			// Stop at the deadline even when the server fell behind: the
			// operations not sent are the shortfall in the rate.
			if !at.Before(deadline) || !time.Now().Before(deadline) {
				break
			}
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					break pace
				case <-time.After(d):
				}
			}
			issued.Add(1)
			select {
			case work <- slot{i, at}:
			case <-ctx.Done():
				break pace
			}
		}
		close(work)
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	p := Phase{Name: name, Mode: "max", Seconds: round(elapsed.Seconds(), 2), Requests: issued.Load()}
	if l.Rate > 0 {
		p.Mode, p.TargetRate = "paced", l.Rate
	}
	rec.mu.Lock()
	p.Counts = rec.c
	p.Latency = summarise(rec.lat)
	p.FirstError = rec.firstErr
	for st, n := range rec.statusErr {
		if p.ErrorCodes == nil {
			p.ErrorCodes = map[string]int64{}
		}
		key := fmt.Sprint(st)
		if st == 0 {
			key = "transport"
		}
		p.ErrorCodes[key] = n
	}
	rec.mu.Unlock()
	p.Rate = round(float64(p.OK+p.Refused+p.Limited)/elapsed.Seconds(), 0)
	b.procs.end(win, &p)
	return p
}

// progress prints the phase's counts about once a second until stopped.
func (b *Bench) progress(name string, rec *recorder, issued *atomic.Int64) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				c, _ := rec.snapshot()
				n := c.OK + c.Refused + c.Limited
				fmt.Fprintf(b.cfg.Progress, "  %-12s %3.0fs  sent %-7d done %-7d ok %-7d refused %-5d limited %-5d errors %-5d %6d/s\n",
					name, time.Since(start).Seconds(), issued.Load(), n+c.Errors, c.OK, c.Refused, c.Limited, c.Errors, n-last)
				last = n
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
