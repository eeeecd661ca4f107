package web

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// The queue dashboard (asynqmon) is a single-page app built elsewhere: its
// page asks a third-party host for fonts, runs inline scripts and has no
// way back to the front desk. selfContained serves it as one of our own
// pages instead.

// queuesCSP allows nothing from another origin. Inline scripts run by
// nonce; the app's style library injects <style> elements, which carry the
// nonce it reads from the page's csp-nonce meta tag.
const queuesCSP = "default-src 'self'; script-src 'self' 'nonce-%s'; style-src 'self' 'nonce-%s'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var (
	// foreignLink matches a <link> to another origin (the dashboard's web
	// fonts).
	foreignLink = regexp.MustCompile(`<link[^>]+href="(?:https?:)?//[^"]*"[^>]*>`)
	// manifestLink matches the link to the web-app manifest, which an
	// admin page has no use for and which Chrome reports it cannot parse.
	manifestLink = regexp.MustCompile(`<link rel="manifest"[^>]*>`)
	// inlineScript matches an opening <script> tag without a src.
	inlineScript = regexp.MustCompile(`<script>`)
)

// queuesBanner is put at the top of the dashboard's page: the way back.
const queuesBanner = `<nav class="latchkey-back" aria-label="latchkey"><a href="/admin">← Front desk</a><a href="/admin/operations">Operations</a></nav>`

// isQueuesAPI reports whether path is one of the dashboard's JSON calls,
// whose errors stay JSON for its script to read.
func isQueuesAPI(path string) bool { return strings.HasPrefix(path, queuesPath+"/api/") }

// selfContained wraps the dashboard handler h: its HTML page loses links to
// other origins, gains a nonce on its inline scripts, our stylesheet and a
// link back to the front desk; every answer gets a CSP that forbids other
// origins.
func selfContained(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := rand.Text()
		w.Header().Set("Content-Security-Policy", fmt.Sprintf(queuesCSP, nonce, nonce))
		if isQueuesAPI(r.URL.Path) || r.Method != http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if rec.header.Get("Content-Type") == "" {
			// The dashboard leaves its page's type to be sniffed.
			rec.header.Set("Content-Type", http.DetectContentType(body))
		}
		if strings.HasPrefix(rec.header.Get("Content-Type"), "text/html") {
			body = rewriteQueuesPage(body, nonce)
			rec.header.Del("Content-Length")
		}
		for k, vs := range rec.header {
			if k == "Content-Security-Policy" {
				continue
			}
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

// rewriteQueuesPage makes the dashboard's page self-contained.
func rewriteQueuesPage(page []byte, nonce string) []byte {
	page = foreignLink.ReplaceAll(page, nil)
	page = manifestLink.ReplaceAll(page, nil)
	page = inlineScript.ReplaceAll(page, []byte(`<script nonce="`+nonce+`">`))
	head := `<meta property="csp-nonce" content="` + nonce + `"><link rel="stylesheet" href="/admin/static/queues.css">`
	page = bytes.Replace(page, []byte("</head>"), []byte(head+"</head>"), 1)
	page = bytes.Replace(page, []byte("<body>"), []byte("<body>"+queuesBanner), 1)
	return page
}

// bufferedResponse holds an answer so it can be rewritten before it is
// sent. Only the dashboard's page and its static files pass through it.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
