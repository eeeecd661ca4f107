package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestSetupNeedsStartupToken: serve writes the first-run token to
// data/setup-token (0600) and prints the full setup URL; the setup page
// answers 403 without it; setting up with it makes the admin, deletes the
// file and kills the token.
func TestSetupNeedsStartupToken(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	p := d.serve(t, "serve", nil)
	line := p.waitLog(t, "first-run setup", 5*time.Second)
	setupURL, _ := line["url"].(string)
	if !strings.HasPrefix(setupURL, p.URL+"/admin/setup?token=") {
		t.Fatalf("printed setup URL %q, want %s/admin/setup?token=…", setupURL, p.URL)
	}
	tok := strings.TrimPrefix(setupURL, p.URL+"/admin/setup?token=")
	path := filepath.Join(d.DataDir, "setup-token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no setup token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != tok || len(tok) < 32 {
		t.Errorf("token file holds %q, printed token %q", b, tok)
	}

	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, u := range []string{p.URL + "/admin/setup", p.URL + "/admin/setup?token=" + strings.Repeat("0", len(tok))} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s: got %d, want 403", u, resp.StatusCode)
		}
	}
	resp, err := hc.Get(setupURL)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET the printed setup URL: got %d, want 200 with a form", resp.StatusCode)
	}
	var cookies []string
	for _, c := range resp.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	post := func(token string) int {
		form := url.Values{"csrf": {m[1]}, "token": {token}, "email": {"boss@example.com"},
			"password": {"correct horse battery"}, "password_confirm": {"correct horse battery"}}
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/admin/setup", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", strings.Join(cookies, "; "))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusForbidden {
		t.Errorf("setup without the token: got %d, want 403", code)
	}
	if code := post(tok); code != http.StatusSeeOther {
		t.Fatalf("setup with the token: got %d, want 303", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("setup token file after setup: %v, want it deleted", err)
	}
	if code := post(tok); code != http.StatusForbidden {
		t.Errorf("setup again with the used token: got %d, want 403", code)
	}
	p.stop(t)
	if n := strings.Count(p.out.String(), tok); n != 1 {
		t.Errorf("the token appears %d times in the output, want once (the setup URL)", n)
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
