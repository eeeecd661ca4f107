package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/webhooks"
)

const simulateUsage = `usage: latchkey simulate sign-in|sign-out|invite [flags]

Posts a correctly signed Envoy webhook to a running latchkey and prints the
visit that resulted. Ids default to ones derived from the email, so a
sign-out after a sign-in with the same --email finds the same visit. The
server is --url, else LATCHKEY_URL, else the one LATCHKEY_ADDR listens on.`

type simulateOpts struct {
	url, secret, apiKey, name, email, flow, flowName, location, tz, entryID, inviteID string
	arrival                                                                           string
	wait                                                                              time.Duration
}

func runSimulate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, simulateUsage)
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stdout, simulateUsage)
		return fmt.Errorf("simulate: give sign-in, sign-out or invite")
	}
	kind := args[0]
	event := map[string]string{"sign-in": "entry_sign_in", "sign-out": "entry_sign_out", "invite": "invite_created"}[kind]
	if event == "" {
		return fmt.Errorf("simulate: unknown event %q (want sign-in, sign-out or invite)", kind)
	}
	dataDir := envOr(getenv, "LATCHKEY_DATA_DIR", "./data")
	var o simulateOpts
	fs := flag.NewFlagSet("simulate "+kind, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.StringVar(&o.url, "url", envOr(getenv, "LATCHKEY_URL", urlForAddr(envOr(getenv, "LATCHKEY_ADDR", ":8080"))), "base URL of the running server (LATCHKEY_URL; default: the address LATCHKEY_ADDR listens on)")
	fs.StringVar(&o.secret, "secret", firstSecret(getenv("LATCHKEY_ENVOY_SECRET")), "Envoy signing secret (LATCHKEY_ENVOY_SECRET; default: the data dir's envoy-secret)")
	fs.StringVar(&o.apiKey, "api-key", strings.TrimSpace(getenv("LATCHKEY_ADMIN_API_KEY")), "admin API key to read the visit back (LATCHKEY_ADMIN_API_KEY; default: the data dir's admin-api-key)")
	fs.StringVar(&o.name, "name", "", `visitor's full name (default "Jane Visitor"; a sign-out sends none unless given)`)
	fs.StringVar(&o.email, "email", "visitor@example.com", "visitor's email")
	fs.StringVar(&o.flow, "flow", demoFlowID, "Envoy flow id")
	fs.StringVar(&o.flowName, "flow-name", "Visitor", "Envoy flow name")
	fs.StringVar(&o.location, "location", demoLocationID, "Envoy location id")
	fs.StringVar(&o.tz, "tz", "Europe/Berlin", "the location's IANA time zone")
	fs.StringVar(&o.entryID, "entry-id", "", "entry id (default: derived from email, flow and location)")
	fs.StringVar(&o.inviteID, "invite-id", "", "invite id (invite: default derived from the email; sign-in: set to sign in an invited visitor)")
	fs.StringVar(&o.arrival, "arrival", "", "invite: expected arrival, RFC 3339 or +duration such as +2h (default +1h)")
	fs.DurationVar(&o.wait, "wait", 10*time.Second, "how long to wait for the visit to be synced")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("simulate %s: %w", kind, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate %s: unexpected argument %q", kind, fs.Arg(0))
	}
	if o.name == "" && kind != "sign-out" {
		o.name = "Jane Visitor"
	}
	o.url = strings.TrimRight(o.url, "/")
	if o.secret == "" {
		o.secret = readKeyFile(dataDir, "envoy-secret")
	}
	if o.apiKey == "" {
		o.apiKey = readKeyFile(dataDir, "admin-api-key")
	}
	if o.secret == "" {
		return fmt.Errorf("simulate: no signing secret: set LATCHKEY_ENVOY_SECRET or --secret")
	}
	if o.entryID == "" {
		o.entryID = derivedID("entry", o.email, o.flow, o.location)
	}
	if kind == "invite" && o.inviteID == "" {
		o.inviteID = derivedID("invite", o.email, o.flow, o.location)
	}
	now := time.Now().UTC()
	arrival := now.Add(time.Hour)
	if o.arrival != "" {
		var err error
		if arrival, err = parseArrival(o.arrival, now); err != nil {
			return fmt.Errorf("simulate: --arrival: %w", err)
		}
	}
	body, err := json.Marshal(envoyBody(event, o, now, arrival))
	if err != nil {
		return err
	}
	res, err := postSigned(ctx, o.url+"/webhooks/envoy", body, o.secret)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "posted %s: %s\n", event, res.raw)
	if res.VisitID == 0 || o.apiKey == "" {
		return nil
	}
	return printVisit(ctx, stdout, o, res.VisitID)
}

// urlForAddr is the base URL of a server listening on addr: a wildcard or
// missing host is reached on loopback.
func urlForAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "http://127.0.0.1:8080"
	}
	return "http://" + reachableAddr(addr)
}

func firstSecret(s string) string {
	first, _, _ := strings.Cut(s, ",")
	return strings.TrimSpace(first)
}

func readKeyFile(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// derivedID gives a stable numeric id for a visitor, so sign-in and
// sign-out of the same visitor meet.
func derivedID(kind string, parts ...string) string {
	h := sha256.Sum256([]byte(kind + "|" + strings.Join(parts, "|")))
	return strconv.FormatUint(binary.BigEndian.Uint64(h[:8])%900000000+100000000, 10)
}

func parseArrival(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(dur), nil
	}
	return time.Parse(time.RFC3339, s)
}

// envoyBody builds a plugin-worker body shaped like Envoy's real ones.
func envoyBody(event string, o simulateOpts, now, arrival time.Time) map[string]any {
	sql := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }
	meta := map[string]any{
		"event": event, "plugin_id": "00000000-0000-0000-0000-000000000000", "install_id": "1",
		"job":      map[string]any{"id": uuid.NewString(), "name": event},
		"location": map[string]any{"id": o.location, "type": "locations", "attributes": map[string]any{"name": "HQ", "timezone": o.tz, "time-zone": o.tz}},
		"config":   map[string]any{},
	}
	rel := map[string]any{
		"location": map[string]any{"data": map[string]any{"type": "locations", "id": o.location}},
		"flow":     map[string]any{"data": map[string]any{"type": "flows", "id": o.flow}},
	}
	var payload map[string]any
	if event == "invite_created" {
		meta["job"].(map[string]any)["identifier"] = "vr:invite:" + o.inviteID
		payload = map[string]any{"id": o.inviteID, "type": "invites", "relationships": rel, "attributes": map[string]any{
			"full-name": o.name, "email": o.email, "expected-arrival-time": arrival.UTC().Format(time.RFC3339),
			"flow-name": o.flowName, "flow-id": o.flow, "arrived": false,
		}}
	} else {
		meta["job"].(map[string]any)["identifier"] = "vr:entry:" + o.entryID
		attrs := map[string]any{"email": o.email, "signed-in-at": sql(now), "flow-name": o.flowName,
			"approval-status": map[string]any{"status": "approved"}}
		if o.name != "" {
			attrs["full-name"] = o.name
		}
		if event == "entry_sign_out" {
			attrs["signed-in-at"] = sql(now.Add(-time.Hour))
			attrs["signed-out-at"] = sql(now)
		}
		if o.inviteID != "" {
			rel["invite"] = map[string]any{"data": map[string]any{"type": "invites", "id": o.inviteID}}
		}
		payload = map[string]any{"id": o.entryID, "type": "entries", "relationships": rel, "attributes": attrs}
	}
	return map[string]any{"meta": meta, "payload": payload}
}

type postResult struct {
	VisitID int64 `json:"visit_id"`
	raw     string
}

func postSigned(ctx context.Context, url string, body []byte, secret string) (postResult, error) {
	var res postResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Envoy-Signature", webhooks.Sign(body, secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, fmt.Errorf("post webhook: %w (is latchkey serve running at that address?)", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	res.raw = strings.TrimSpace(string(b))
	// Envoy's job semantics: 200 done, 202 continuing, 400 ignored (with
	// the visit and its reason).
	ignored := resp.StatusCode == http.StatusBadRequest && strings.Contains(res.raw, `"status":"ignored"`)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted && !ignored {
		return res, fmt.Errorf("webhook answered %s: %s", resp.Status, res.raw)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("webhook answer: %w", err)
	}
	return res, nil
}

type simVisit struct {
	ID         int64      `json:"id"`
	SourceID   string     `json:"source_id"`
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason"`
	TimeZone   string     `json:"time_zone"`
	ValidFrom  *time.Time `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
	Synced     bool       `json:"synced"`
	PassURL    string     `json:"pass_url"`
	Links      []struct {
		GroupID int64 `json:"group_id"`
		LinkID  int64 `json:"link_id"`
	} `json:"links"`
}

// printVisit polls the visit until it is synced (or the wait ends) and
// prints it.
func printVisit(ctx context.Context, stdout io.Writer, o simulateOpts, id int64) error {
	deadline := time.Now().Add(o.wait)
	var v simVisit
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/visits/%d", o.url, id), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+o.apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("read visit %d: %w", id, err)
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return fmt.Errorf("read visit %d: %s", id, resp.Status)
		}
		if v.Synced || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	loc, err := time.LoadLocation(v.TimeZone)
	if err != nil || v.TimeZone == "" {
		loc = time.UTC
	}
	fmt.Fprintf(stdout, "visit %d (%s) %s: %s — %s\n", v.ID, v.SourceID, v.Name, v.Status, v.Reason)
	if v.ValidFrom != nil && v.ValidUntil != nil {
		fmt.Fprintf(stdout, "  window: %s – %s\n", v.ValidFrom.In(loc).Format("2006-01-02 15:04"), v.ValidUntil.In(loc).Format("2006-01-02 15:04 MST"))
	}
	for _, l := range v.Links {
		fmt.Fprintf(stdout, "  link %d on group %d\n", l.LinkID, l.GroupID)
	}
	if v.PassURL != "" && len(v.Links) > 0 {
		fmt.Fprintf(stdout, "  pass: %s\n", v.PassURL)
	}
	if !v.Synced {
		fmt.Fprintf(stdout, "  (not synced to the controller yet)\n")
	}
	return nil
}
