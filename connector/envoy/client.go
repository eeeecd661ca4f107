// Package envoy is latchkey's client of Envoy's plugin API: the plugin
// token obtained with the integration's client credentials, and the job
// update (PATCH /api/v2/plugin-services/jobs/{id}) that tells Envoy how a
// job answered 202 ended. It is the only code that knows Envoy's outbound
// wire format; Client implements connector.Reporter.
//
// The token is cached and fetched again before it runs out (10 minutes
// before, as Envoy's SDK does, or half its life when that is shorter), and
// once more when Envoy answers 401. The token and the client secret are
// never logged and never part of an error.
package envoy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// Paths of the plugin API.
const (
	TokenPath = "/a/auth/v0/token"
	JobsPath  = "/api/v2/plugin-services/jobs/"
)

// DefaultTimeout bounds one request when Options.HTTPClient is nil.
const DefaultTimeout = 15 * time.Second

// maxAnswer is the most of an answer read.
const maxAnswer = 64 << 10

// Bounds on what a job update carries.
const (
	maxMessage = 500
	maxLabel   = 100
	maxValue   = 2000
	maxItems   = 10
)

const contentType = "application/vnd.api+json"

// Options configures a Client.
type Options struct {
	// ClientID and ClientSecret are the integration's client credentials.
	ClientID, ClientSecret string
	// HTTPClient makes the requests (default: one with DefaultTimeout).
	HTTPClient *http.Client
	// Now is the clock token lifetimes are judged by (default time.Now).
	Now func() time.Time
}

// Client talks to Envoy's plugin API. It is safe for concurrent use.
type Client struct {
	base string
	opts Options

	mu      sync.Mutex // guards token and renewAt
	token   string
	renewAt time.Time
	// fetch makes one token request serve every caller waiting for it.
	fetch singleflight.Group
}

var _ connector.Reporter = (*Client)(nil)

// New returns a Client on Envoy's base URL (e.g. https://app.envoy.com).
func New(baseURL string, o Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("envoy: base URL %q is not an http(s) URL", baseURL)
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		return nil, fmt.Errorf("envoy: a client id and a client secret are needed")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), opts: o}, nil
}

type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Scope        string `json:"scope"`
}

type tokenAnswer struct {
	TokenType   string  `json:"token_type"`
	AccessToken string  `json:"access_token"`
	ExpiresIn   float64 `json:"expires_in"`
}

// Token returns the plugin token, fetching one when none is cached or the
// cached one is due for renewal. One fetch serves every caller waiting for
// it; a caller whose ctx ends stops waiting (the fetch goes on for the
// others, bounded by the client's timeout).
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, fresh := c.token, c.token != "" && c.opts.Now().Before(c.renewAt)
	c.mu.Unlock()
	if fresh {
		return tok, nil
	}
	ch := c.fetch.DoChan("token", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
		defer cancel()
		return c.fetchToken(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", latchkey.Wrap(latchkey.Unavailable, "envoy: waiting for the plugin token", ctx.Err())
	}
}

// fetchToken asks Envoy for a plugin token and caches it.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	body, _ := json.Marshal(tokenRequest{GrantType: "client_credentials", ClientID: c.opts.ClientID,
		ClientSecret: c.opts.ClientSecret, Scope: "plugin,token.refresh"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+TokenPath, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("envoy: token request: %w", err)
	}
	req.SetBasicAuth(c.opts.ClientID, c.opts.ClientSecret)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", contentType)
	obtained := c.opts.Now()
	status, answer, err := c.do(req)
	if err != nil {
		return "", err
	}
	if status/100 != 2 {
		return "", c.answerError("the plugin token", "", status, answer)
	}
	var t tokenAnswer
	if err := json.Unmarshal(answer, &t); err != nil || t.AccessToken == "" {
		return "", latchkey.Errorf(latchkey.Unavailable, "envoy: the token answer has no access_token")
	}
	life := time.Duration(t.ExpiresIn * float64(time.Second))
	if life <= 0 {
		life = 5 * time.Minute
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token, c.renewAt = t.AccessToken, obtained.Add(life-min(10*time.Minute, life/2))
	return c.token, nil
}

// forget drops token from the cache, unless another caller replaced it.
func (c *Client) forget(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

type jobUpdate struct {
	Status        string       `json:"status,omitempty"`
	StatusMessage string       `json:"status_message,omitempty"`
	FailureReason string       `json:"failure_reason,omitempty"`
	Attachments   []attachment `json:"attachments"`
}

type attachment struct {
	Type  string `json:"type"`
	Label string `json:"label"`
	Value string `json:"value"`
	URL   string `json:"url,omitempty"`
}

// ReportJob PATCHes job jobID with r's status, message and attachments.
// A 401 is answered by one more try with a fresh token.
func (c *Client) ReportJob(ctx context.Context, jobID string, r connector.JobReport) error {
	if jobID == "" {
		return latchkey.Errorf(latchkey.Invalid, "envoy: no job id")
	}
	switch r.Status {
	case connector.JobDone, connector.JobIgnored, connector.JobFailed:
	default:
		return latchkey.Errorf(latchkey.Invalid, "envoy: job status %q is not done, ignored or failed", r.Status)
	}
	u := jobUpdate{Status: r.Status, StatusMessage: clip(r.Message, maxMessage), FailureReason: clip(r.FailureReason, maxMessage), Attachments: []attachment{}}
	for i, a := range r.Attachments {
		if i == maxItems {
			break
		}
		at := attachment{Type: a.Type, Label: clip(a.Label, maxLabel), Value: clip(a.Value, maxValue)}
		if a.Type == connector.AttachLink {
			at.URL = a.URL
		}
		u.Attachments = append(u.Attachments, at)
	}
	body, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("envoy: encode job update: %w", err)
	}
	for attempt := 0; ; attempt++ {
		token, err := c.Token(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, c.base+JobsPath+url.PathEscape(jobID), bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("envoy: job update request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", contentType)
		status, answer, err := c.do(req)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			c.forget(token)
			continue
		}
		if status/100 != 2 {
			return c.answerError("the job update", token, status, answer)
		}
		return nil
	}
}

// do sends req and reads at most maxAnswer bytes of the answer.
func (c *Client) do(req *http.Request) (int, []byte, error) {
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		// The URL is Envoy's, the body is not part of the error: nothing
		// secret is in it.
		return 0, nil, latchkey.Wrap(latchkey.Unavailable, "envoy unreachable", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, latchkey.Wrap(latchkey.Unavailable, "envoy: answer cut off", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	return resp.StatusCode, b, nil
}

// answerError is the error for a non-2xx answer: Unavailable (retry) for
// 408, 429 and 5xx, Unauthorized for 401 and 403, Invalid (final) for any
// other. Envoy's own message, if any, is kept, shortened and with the
// credentials (and token, the one sent) redacted.
func (c *Client) answerError(what, token string, status int, answer []byte) error {
	var m struct {
		Message string `json:"message"`
		Error   any    `json:"error"`
		Errors  []struct {
			Detail string `json:"detail"`
			Title  string `json:"title"`
		} `json:"errors"`
	}
	detail := ""
	if json.Unmarshal(answer, &m) == nil {
		detail = m.Message
		if detail == "" && len(m.Errors) > 0 {
			detail = m.Errors[0].Detail + m.Errors[0].Title
		}
		if s, ok := m.Error.(string); ok && detail == "" {
			detail = s
		}
	}
	for _, secret := range []string{token, c.opts.ClientSecret} {
		if secret != "" {
			detail = strings.ReplaceAll(detail, secret, "[redacted]")
		}
	}
	msg := fmt.Sprintf("envoy refused %s (%d)", what, status)
	if detail = clip(detail, 200); detail != "" {
		msg += ": " + detail
	}
	kind := latchkey.Invalid
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		kind = latchkey.Unavailable
		msg = fmt.Sprintf("envoy could not take %s (%d)", what, status)
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		kind = latchkey.Unauthorized
	}
	return latchkey.Errorf(kind, "%s", msg)
}

// clip shortens s to at most n runes, on a rune boundary.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
