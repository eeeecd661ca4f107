package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// burstSize is the size of a front desk's busy moment: this many visit
// actions (extend and revoke, alternately) sent at once with as many new
// sign-ins.
const burstSize = 24

// burstRounds bounds the rounds of the burst phase; at least
// burstMinRounds run whatever the duration.
const (
	burstRounds    = 50
	burstMinRounds = 3
)

// burst measures a busy front desk: each round signs in burstSize guests
// (not timed), then sends an action on each of their visits together with
// burstSize new sign-ins, and takes the time until the last of those
// requests is answered. A round is one operation: its latency is that
// time, and it is an error when any of its requests failed.
func (b *Bench) burst(ctx context.Context) Phase {
	rec := newRecorder()
	win := b.procs.begin()
	start := time.Now()
	deadline := start.Add(b.cfg.Duration)
	rounds := burstRounds
	if b.cfg.Count > 0 {
		rounds = max(min(rounds, b.cfg.Count), burstMinRounds)
	}
	var issued int64
	for r := 0; r < rounds && ctx.Err() == nil && (r < burstMinRounds || time.Now().Before(deadline)); r++ {
		ids := make([]int64, burstSize)
		for i := range ids {
			st, id, err := b.postWebhook(ctx, b.envoyBody(b.newVisitor(), "entry_sign_in", time.Now()))
			if err != nil || id == 0 {
				rec.add(0, outcomeError, st, fmt.Sprintf("seed sign-in: %v", err))
				return b.burstPhase(start, issued, rec, win)
			}
			ids[i] = id
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed, status := "", 0
		fail := func(st int, msg string) {
			mu.Lock()
			defer mu.Unlock()
			if failed == "" {
				failed, status = msg, st
			}
		}
		t0 := time.Now()
		for i, id := range ids {
			wg.Add(2)
			go func() {
				defer wg.Done()
				path, body := fmt.Sprintf("/api/v1/visits/%d/extend", id), `{"minutes":30}`
				if i%2 == 1 {
					path, body = fmt.Sprintf("/api/v1/visits/%d/revoke", id), ""
				}
				if st, err := b.adminPost(ctx, path, body); err != nil {
					fail(st, err.Error())
				}
			}()
			go func() {
				defer wg.Done()
				if st, _, err := b.postWebhook(ctx, b.envoyBody(b.newVisitor(), "entry_sign_in", time.Now())); err != nil {
					fail(st, err.Error())
				}
			}()
		}
		wg.Wait()
		issued += 2 * burstSize
		if failed != "" {
			rec.add(time.Since(t0), outcomeError, status, failed)
		} else {
			rec.add(time.Since(t0), outcomeOK, http.StatusOK, "")
		}
	}
	return b.burstPhase(start, issued, rec, win)
}

func (b *Bench) burstPhase(start time.Time, issued int64, rec *recorder, win window) Phase {
	elapsed := time.Since(start)
	p := Phase{Name: "burst", Mode: "rounds", Seconds: round(elapsed.Seconds(), 2), Requests: issued}
	rec.mu.Lock()
	p.Counts = rec.c
	p.Latency = summarise(rec.lat)
	p.FirstError = rec.firstErr
	rec.mu.Unlock()
	p.Rate = round(float64(p.OK)/elapsed.Seconds(), 2)
	p.Note = fmt.Sprintf("each round: %d front-desk actions (extend, revoke) and %d new sign-ins at once; latency is the round's", burstSize, burstSize)
	b.procs.end(win, &p)
	return p
}

// adminPost posts body to the admin API at path; it returns the status,
// and an error unless the answer is 2xx.
func (b *Bench) adminPost(ctx context.Context, path, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+b.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("POST %s: %s: %s", path, strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(raw)))
	}
	return resp.StatusCode, nil
}
