package lockctl

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// offline matches npm's errors for a registry it cannot reach.
var offline = regexp.MustCompile(`ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|proxy`)

// TestKisiJSClient runs testdata/kisi-client/drive.mjs, which drives a real
// lockctl through Kisi's official JavaScript client (npm kisi-client,
// pinned by the lockfile), unchanged. It needs node and npm, and the npm
// registry for `npm ci`; without them it is skipped.
func TestKisiJSClient(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json", "drive.mjs"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "kisi-client", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		if offline.Match(out) || ctx.Err() != nil {
			t.Skipf("the npm registry cannot be reached (npm ci: %v): %s", err, bytes.TrimSpace(out))
		}
		t.Fatalf("npm ci: %v\n%s", err, out)
	}

	e := newEnv(t, nil)
	f := e.site()
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	run := exec.CommandContext(ctx, "node", "drive.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(), "KISI_BASE_URL="+srv.URL, "KISI_API_KEY="+adminKey,
		"GROUP_ID="+strconv.FormatInt(f.visitors, 10), "LOCK_ID="+strconv.FormatInt(f.front, 10),
		"NOW="+rfc(e.clock.Now()))
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("drive.mjs: %v\n%s", err, out)
	}

	// What the client did is in the audit log, as lockctl recorded it.
	want := []string{"user.destroy", "guest.destroy", "share.destroy", "share.update", "share.create", "user.create",
		"lock.unlock", "invite.create", "access_key.create", "role_assignment.create", "guest.create",
		"role_assignment.destroy", "role_assignment.update", "role_assignment.create", "guest.create", "user.update", "user.create"}
	var got []string
	for _, ev := range decode[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?limit=250", auth: admin()})) {
		if slices.Contains(want, ev.Type) {
			got = append(got, ev.Type)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events of the client's session, newest first (-want +got):\n%s", d)
	}
}
