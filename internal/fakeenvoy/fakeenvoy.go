// Package fakeenvoy is a fake of Envoy's plugin API for tests (Envoy is an
// external seam): the plugin token by client credentials, the job update
// and the install config endpoints, as plugin-and-members.md part A gives
// them. It checks the basic auth, the bearer token and the body shapes,
// and records every call. It imports no domain package.
package fakeenvoy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Call is one request the fake received.
type Call struct {
	Method, Path string
	// Status is what the fake answered.
	Status int
	// Problem says what was wrong with the request, "" when nothing.
	Problem string
	Body    []byte
}

// Attachment is an attachment as Envoy receives it.
type Attachment struct {
	Type  string `json:"type"`
	Label string `json:"label"`
	Value string `json:"value"`
	URL   string `json:"url,omitempty"`
}

// JobUpdate is a job update as Envoy receives it.
type JobUpdate struct {
	JobID         string       `json:"-"`
	Status        string       `json:"status"`
	StatusMessage string       `json:"status_message"`
	FailureReason string       `json:"failure_reason"`
	Attachments   []Attachment `json:"attachments"`
}

// Envoy is the fake. Build it with Start.
type Envoy struct {
	URL                    string
	ClientID, ClientSecret string

	mu        sync.Mutex
	calls     []Call
	tokens    map[string]bool
	issued    int
	expiresIn int
	fail      int // the next fail job updates answer failStatus
	failAll   bool
	failCode  int
	jobs      []JobUpdate
	configs   map[string]map[string]any
}

// Start starts a fake Envoy for t with the given client credentials; it is
// closed in t's cleanup.
func Start(t testing.TB, clientID, clientSecret string) *Envoy {
	e := &Envoy{ClientID: clientID, ClientSecret: clientSecret, tokens: map[string]bool{}, expiresIn: 43200,
		failCode: http.StatusInternalServerError, configs: map[string]map[string]any{}}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// SetExpiresIn sets the expires_in of the tokens issued from now on.
func (e *Envoy) SetExpiresIn(seconds int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expiresIn = seconds
}

// RevokeTokens makes every token issued so far invalid.
func (e *Envoy) RevokeTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens = map[string]bool{}
}

// FailJobs makes the next n job updates answer code (after the checks).
func (e *Envoy) FailJobs(n, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail, e.failCode = n, code
}

// SetFailing makes every job update answer 500 while on.
func (e *Envoy) SetFailing(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failAll, e.failCode = on, http.StatusInternalServerError
}

// TokensIssued counts the tokens issued.
func (e *Envoy) TokensIssued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.issued
}

// Calls returns every call so far.
func (e *Envoy) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Call(nil), e.calls...)
}

// Problems returns the problems found in requests, if any.
func (e *Envoy) Problems() []string {
	var out []string
	for _, c := range e.Calls() {
		if c.Problem != "" {
			out = append(out, fmt.Sprintf("%s %s: %s", c.Method, c.Path, c.Problem))
		}
	}
	return out
}

// Jobs returns the job updates accepted (answered 2xx), in order.
func (e *Envoy) Jobs() []JobUpdate {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]JobUpdate(nil), e.jobs...)
}

// JobAttempts counts the job updates received for job id, answered or not.
func (e *Envoy) JobAttempts(id string) int {
	n := 0
	for _, c := range e.Calls() {
		if c.Method == http.MethodPatch && c.Path == "/api/v2/plugin-services/jobs/"+id {
			n++
		}
	}
	return n
}

// Config returns install id's config as stored by PUT.
func (e *Envoy) Config(id string) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]any{}
	for k, v := range e.configs[id] {
		out[k] = v
	}
	return out
}

func (e *Envoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	e.mu.Lock()
	defer e.mu.Unlock()
	call := Call{Method: r.Method, Path: r.URL.EscapedPath(), Body: body}
	status, answer := e.serve(r, body, &call)
	call.Status = status
	e.calls = append(e.calls, call)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer)
}

// serve answers one call; e.mu is held.
func (e *Envoy) serve(r *http.Request, body []byte, call *Call) (int, any) {
	bad := func(status int, problem string) (int, any) {
		call.Problem = problem
		return status, map[string]any{"message": problem}
	}
	path := r.URL.EscapedPath()
	if path == "/a/auth/v0/token" {
		if r.Method != http.MethodPost {
			return bad(http.StatusMethodNotAllowed, "token: want POST")
		}
		id, secret, ok := r.BasicAuth()
		if !ok || id != e.ClientID || secret != e.ClientSecret {
			return bad(http.StatusUnauthorized, "token: bad basic auth")
		}
		var req map[string]any
		if err := strictJSON(body, &req); err != nil {
			return bad(http.StatusBadRequest, "token: "+err.Error())
		}
		want := map[string]any{"grant_type": "client_credentials", "client_id": e.ClientID, "client_secret": e.ClientSecret, "scope": "plugin,token.refresh"}
		for k, v := range want {
			if req[k] != v {
				return bad(http.StatusBadRequest, fmt.Sprintf("token: %s is %v, want %v", k, req[k], v))
			}
		}
		if len(req) != len(want) {
			return bad(http.StatusBadRequest, "token: unexpected fields")
		}
		e.issued++
		tok := fmt.Sprintf("plugin-token-%d", e.issued)
		e.tokens[tok] = true
		return http.StatusOK, map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": e.expiresIn,
			"refresh_token": "refresh-" + tok, "refresh_token_expires_in": 259200}
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || !e.tokens[strings.TrimPrefix(auth, "Bearer ")] {
		return bad(http.StatusUnauthorized, "missing or unknown bearer token")
	}
	if ct := r.Header.Get("Content-Type"); r.Method != http.MethodGet && !strings.Contains(ct, "json") {
		return bad(http.StatusUnsupportedMediaType, "content type "+ct)
	}
	if id, ok := strings.CutPrefix(path, "/api/v2/plugin-services/jobs/"); ok && id != "" && !strings.Contains(id, "/") {
		if r.Method != http.MethodPatch {
			return bad(http.StatusMethodNotAllowed, "job: want PATCH")
		}
		var u JobUpdate
		if err := strictJSON(body, &u); err != nil {
			return bad(http.StatusBadRequest, "job: "+err.Error())
		}
		if p := checkJob(body, u); p != "" {
			return bad(http.StatusUnprocessableEntity, "job: "+p)
		}
		if e.failAll || e.fail > 0 {
			if e.fail > 0 {
				e.fail--
			}
			return e.failCode, map[string]any{"message": "fake failure"}
		}
		u.JobID = id
		e.jobs = append(e.jobs, u)
		return http.StatusOK, map[string]any{"data": map[string]any{"id": id, "name": "job", "identifier": id}}
	}
	if rest, ok := strings.CutPrefix(path, "/api/v2/plugin-services/installs/"); ok && strings.HasSuffix(rest, "/config") {
		id := strings.TrimSuffix(rest, "/config")
		cfg := e.configs[id]
		if cfg == nil {
			cfg = map[string]any{}
			e.configs[id] = cfg
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut:
			var patch map[string]any
			if err := strictJSON(body, &patch); err != nil {
				return bad(http.StatusBadRequest, "config: "+err.Error())
			}
			for k, v := range patch {
				if v == nil {
					delete(cfg, k)
				} else {
					cfg[k] = v
				}
			}
		default:
			return bad(http.StatusMethodNotAllowed, "config: want GET or PUT")
		}
		return http.StatusOK, map[string]any{"data": cfg}
	}
	return bad(http.StatusNotFound, "no such endpoint")
}

// checkJob checks a job update's shape: a known status, the message, an
// attachments array whose items are text or link attachments.
func checkJob(body []byte, u JobUpdate) string {
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(body, &raw)
	if _, ok := raw["attachments"]; !ok {
		return "no attachments array"
	}
	switch u.Status {
	case "done", "ignored", "failed":
	default:
		return fmt.Sprintf("status %q", u.Status)
	}
	if u.StatusMessage == "" {
		return "no status_message"
	}
	for _, a := range u.Attachments {
		switch {
		case a.Type != "text" && a.Type != "link":
			return fmt.Sprintf("attachment type %q", a.Type)
		case a.Label == "" || a.Value == "":
			return "attachment without label or value"
		case a.Type == "link" && !strings.HasPrefix(a.URL, "http"):
			return "link attachment without url"
		case a.Type == "text" && a.URL != "":
			return "text attachment with a url"
		}
	}
	return ""
}

// strictJSON decodes b into v, refusing unknown fields and trailing data.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
