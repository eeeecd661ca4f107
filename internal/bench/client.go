package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/webhooks"
)

// visitor is one simulated guest: its Envoy entry id, its client address
// (sent as X-Forwarded-For, so lockctl's per-IP limit sees one guest, not
// the bench) and, once known, its visit and pass.
type visitor struct {
	n       int
	entryID string
	ip      string
	visitID int64
	pass    string
}

func (b *Bench) newVisitor() *visitor {
	n := int(b.seq.Add(1))
	// 198.18.0.0/15 is reserved for benchmarks: these addresses are only
	// header values, never dialled.
	ip := fmt.Sprintf("198.%d.%d.%d", 18+(n>>16)&1, (n>>8)&0xff, n&0xff)
	return &visitor{n: n, entryID: fmt.Sprintf("%d%07d", b.runID, n), ip: ip}
}

// envoyBody returns a plugin-worker webhook body shaped like Envoy's, for
// an entry sign-in or sign-out of v. It is built from a template, not
// encoding/json, so the bench spends its share of the CPU on requests.
func (b *Bench) envoyBody(v *visitor, event string, now time.Time) []byte {
	sql := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }
	out := ""
	if event == "entry_sign_out" {
		out = `,"signed-out-at":"` + sql(now) + `"`
		now = now.Add(-time.Hour)
	}
	job := fmt.Sprintf("bench-%d-%d-%s", b.runID, b.jobs.Add(1), event)
	return fmt.Appendf(nil, `{"meta":{"event":%q,"plugin_id":"00000000-0000-0000-0000-000000000000","install_id":"1",`+
		`"job":{"id":%q,"name":%q,"identifier":"vr:entry:%s"},`+
		`"location":{"id":%q,"type":"locations","attributes":{"name":"HQ","timezone":"Europe/Berlin","time-zone":"Europe/Berlin"}},"config":{}},`+
		`"payload":{"id":%q,"type":"entries","relationships":{"location":{"data":{"type":"locations","id":%q}},"flow":{"data":{"type":"flows","id":%q}}},`+
		`"attributes":{"full-name":"Bench Guest %d","email":%q,"signed-in-at":%q%s,"flow-name":"Visitor","approval-status":{"status":"approved"}}}}`,
		event, job, event, v.entryID, b.cfg.Location, v.entryID, b.cfg.Location, b.cfg.Flow,
		v.n, b.email(v), sql(now), out)
}

// email is the guest's address, unique to this run.
func (b *Bench) email(v *visitor) string {
	return fmt.Sprintf("guest%d-%d@bench.example", b.runID, v.n)
}

type ackBody struct {
	Status  string `json:"status"`
	VisitID int64  `json:"visit_id"`
}

// postWebhook signs and posts body; it returns the HTTP status and the
// visit id from an acknowledgement: 200 (done) or 202 (access work
// continues in the queue, as every new sign-in's does).
func (b *Bench) postWebhook(ctx context.Context, body []byte) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.URL+"/webhooks/envoy", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Envoy-Signature", webhooks.Sign(body, b.cfg.Secret))
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, 0, fmt.Errorf("webhook: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	var a ackBody
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp.StatusCode, 0, fmt.Errorf("webhook answer: %w", err)
	}
	if a.Status != "accepted" && a.Status != "duplicate" {
		return resp.StatusCode, a.VisitID, fmt.Errorf("webhook answered %q, want accepted (is the flow mapped?)", a.Status)
	}
	return resp.StatusCode, a.VisitID, nil
}

// unlock posts a guest unlock through the pass; it returns the status
// (200 unlocked, 403 refused, 429 rate limited).
func (b *Bench) unlock(ctx context.Context, v *visitor) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v/%s/locks/%d/unlock", b.cfg.URL, v.pass, b.lockID), nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Forwarded-For", v.ip)
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, strings.TrimSpace(string(raw)), nil
}

type apiVisit struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Synced  bool   `json:"synced"`
	PassURL string `json:"pass_url"`
	Links   []struct {
		LinkID int64 `json:"link_id"`
	} `json:"links"`
}

func (b *Bench) getJSON(ctx context.Context, path string, dst any) error {
	_, err := b.getJSONStatus(ctx, path, dst)
	return err
}

// getJSONStatus is getJSON that also returns the HTTP status (0 when
// there was no answer).
func (b *Bench) getJSONStatus(ctx context.Context, path string, dst any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.URL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+b.cfg.APIKey)
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
		return resp.StatusCode, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(raw)))
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(dst)
}

// fetchPass fills v.pass from the admin API.
func (b *Bench) fetchPass(ctx context.Context, v *visitor) error {
	var av apiVisit
	if err := b.getJSON(ctx, "/api/v1/visits/"+strconv.FormatInt(v.visitID, 10), &av); err != nil {
		return err
	}
	i := strings.LastIndex(av.PassURL, "/v/")
	if i < 0 {
		return fmt.Errorf("visit %d has no pass URL", v.visitID)
	}
	v.pass = av.PassURL[i+len("/v/"):]
	return nil
}

var doorRE = regexp.MustCompile(`/locks/(\d+)/unlock`)

// discoverLock signs one guest in, waits until the pass shows a door and
// returns that door's id: the lock all unlocks of the run go to.
func (b *Bench) discoverLock(ctx context.Context) (int64, error) {
	v := b.newVisitor()
	_, id, err := b.postWebhook(ctx, b.envoyBody(v, "entry_sign_in", time.Now()))
	if err != nil {
		return 0, err
	}
	v.visitID = id
	if err := b.fetchPass(ctx, v); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.URL+"/v/"+v.pass, nil)
		if err != nil {
			return 0, err
		}
		resp, err := b.http.Do(req)
		if err != nil {
			return 0, err
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if m := doorRE.FindSubmatch(raw); m != nil {
			return strconv.ParseInt(string(m[1]), 10, 64)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("the first guest's pass showed no door within 2 minutes: is the worker running and the flow mapped to a group with doors?")
}

// settlePoll is how often a settle asks about its marker guest, and
// settleEmailWait how long it waits for the guest's email once synced.
const (
	settlePoll      = 200 * time.Millisecond
	settleEmailWait = time.Minute
)

// drain signs one guest in and waits until the worker has synced its
// visit and, with embedded mail, sent its email. The queues are first in,
// first out, so by then the backlog of the phase before is worked off and
// does not weigh on the next one.
func (b *Bench) drain(ctx context.Context, wait time.Duration) error {
	if b.cfg.APIKey == "" {
		b.pause(ctx, 3*time.Second)
		return nil
	}
	start := time.Now()
	v := b.newVisitor()
	_, id, err := b.postWebhook(ctx, b.envoyBody(v, "entry_sign_in", time.Now()))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var av apiVisit
		if err := b.getJSON(ctx, "/api/v1/visits/"+strconv.FormatInt(id, 10), &av); err != nil {
			return err
		}
		if av.Synced && len(av.Links) > 0 {
			// The emails of the syncs before it are queued before its
			// own: once it is captured, they are sent too (unknown when
			// mail goes over SMTP).
			v.visitID = id
			wait := min(time.Until(deadline), settleEmailWait)
			if _, err := b.awaitEmail(ctx, v, wait, settlePoll); err != nil && !errors.Is(err, errNoOutbox) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// A flow whose links the controller mails owes no email.
				fmt.Fprintf(b.cfg.Progress, "  no email for the marker guest within %s; going on\n", wait)
			}
			fmt.Fprintf(b.cfg.Progress, "  worker caught up in %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePoll):
		}
	}
	return fmt.Errorf("the worker did not catch up within %s", wait)
}

// statements returns the server's database round trips so far: the sum of
// its latchkey_db_statements_total series on /metrics.
func (b *Bench) statements() (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return sumSeries(io.LimitReader(resp.Body, 8<<20), "latchkey_db_statements_total")
}

// sumSeries adds up every sample of the metric name in a Prometheus text
// exposition; it fails when there is none.
func sumSeries(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	total, found := 0.0, false
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: bad sample %q", name, line)
		}
		total, found = total+v, true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("the server reports no %s", name)
	}
	return total, nil
}
