package latchkey_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/latchkey/latchkey"

// imports maps each package directory to the imports of its non-test files.
func imports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if out[dir] == nil {
			out[dir] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[dir][p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportRules enforces the one-way design: the domain knows nothing of
// HTTP or queues, each library stays in the packages that own it, and
// nothing imports web or cmd.
func TestImportRules(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages; is the test running at the module root?", len(pkgs))
	}
	forbidden := map[string][]string{
		"connector":      {"/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "hibiken/asynq", "robfig/cron"},
		"mappings":       {"/connector", "/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "hibiken/asynq"},
		"lockctl":        {"/connector", "/mappings", "/jobs", "/web", "/webhooks", "hibiken/asynq"},
		"webhooks":       {"/lockctl", "/jobs", "/web", "hibiken/asynq", "gorm.io"},
		"jobs":           {"/lockctl", "/web", "/webhooks", "labstack/echo", "gorm.io"},
		"web":            {"/jobs", "/lockctl", "/webhooks", "hibiken/asynq", "robfig/cron"},
		"connector/kisi": {"/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "gorm.io"},
	}
	for dir, ims := range pkgs {
		for im := range ims {
			if !strings.HasPrefix(im, module) {
				for _, lib := range []string{"hibiken/asynq", "robfig/cron"} {
					if strings.Contains(im, lib) && dir != "jobs" && !strings.HasPrefix(dir, "cmd/") {
						t.Errorf("%s imports %s: asynq and cron belong to jobs (and cmd)", dir, im)
					}
				}
				if strings.Contains(im, "labstack/echo") && !owns(dir, "web", "webhooks", "lockctl", "cmd/", "internal/bench") {
					t.Errorf("%s imports %s: echo belongs to web, webhooks, lockctl and cmd", dir, im)
				}
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(im, module), "/")
			if (rel == "web" || strings.HasPrefix(rel, "cmd")) && !strings.HasPrefix(dir, "cmd/") {
				t.Errorf("%s imports %s: nothing imports web or cmd", dir, im)
			}
			if strings.HasPrefix(dir, "internal/") && !strings.HasPrefix(rel, "internal/") && rel != "" && !strings.HasPrefix(dir, "internal/bench") && !strings.HasPrefix(dir, "internal/faults") {
				t.Errorf("%s imports %s: internal packages import no domain package", dir, im)
			}
		}
		for _, bad := range forbidden[dir] {
			for im := range ims {
				if strings.Contains(im, bad) && !(bad == "/web" && strings.Contains(im, "/webhooks")) {
					t.Errorf("%s imports %s, which it must not", dir, im)
				}
			}
		}
	}
}

func owns(dir string, owners ...string) bool {
	for _, o := range owners {
		if dir == o || strings.HasPrefix(dir, o) {
			return true
		}
	}
	return false
}
