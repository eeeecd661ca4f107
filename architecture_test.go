package latchkey_test

import (
	"go/ast"
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
		"connector":       {"/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "hibiken/asynq", "robfig/cron"},
		"mappings":        {"/connector", "/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "hibiken/asynq"},
		"lockctl":         {"/connector", "/mappings", "/jobs", "/web", "/webhooks", "hibiken/asynq"},
		"webhooks":        {"/lockctl", "/jobs", "/web", "hibiken/asynq", "gorm.io"},
		"jobs":            {"/lockctl", "/web", "/webhooks", "labstack/echo", "gorm.io"},
		"web":             {"/jobs", "/lockctl", "/webhooks", "hibiken/asynq", "robfig/cron", "gorm.io"},
		"accounts":        {"/connector", "/mappings", "/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "hibiken/asynq"},
		"connector/kisi":  {"/lockctl", "/jobs", "/web", "/webhooks", "labstack/echo", "gorm.io"},
		"connector/envoy": {"/lockctl", "/jobs", "/web", "/webhooks", "/connector/kisi", "labstack/echo", "gorm.io"},
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
			if (strings.HasPrefix(rel, "cmd") && !owns(dir, "cmd/")) || (rel == "web" && !owns(dir, "cmd/", "internal/stacktest")) {
				t.Errorf("%s imports %s: nothing imports web or cmd (but cmd, and the test stack, which starts web)", dir, im)
			}
			if strings.HasPrefix(dir, "internal/") && !strings.HasPrefix(rel, "internal/") && rel != "" && !owns(dir, "internal/bench", "internal/faults", "internal/schema", "internal/stacktest") {
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

// goFiles parses every non-test Go file of the module, by slash path.
func goFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	out := map[string]*ast.File{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(path)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGormStaysInStores: only store files (named store*.go) and the
// database layer import gorm, so no use case, handler or job writes SQL.
// lockctl, a controller with a layering of its own, is outside this rule,
// and the outbox file is the outbox's store.
func TestGormStaysInStores(t *testing.T) {
	for path, f := range goFiles(t) {
		if owns(path, "internal/database/", "internal/testenv/", "lockctl/") || path == "internal/mail/outbox.go" ||
			strings.HasPrefix(filepath.Base(path), "store") {
			continue
		}
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); strings.HasPrefix(p, "gorm.io/") {
				t.Errorf("%s imports %s: gorm belongs to store files and internal/database", path, p)
			}
		}
	}
}

// TestOneEnqueueSite: outside jobs (the queue itself), work is queued only
// by connector's Service in ports.go, after its change committed.
func TestOneEnqueueSite(t *testing.T) {
	sites := 0
	for path, f := range goFiles(t) {
		if owns(path, "jobs/") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "Enqueue") {
				if path != "connector/ports.go" {
					t.Errorf("%s calls %s: only connector/ports.go queues work", path, sel.Sel.Name)
				}
				sites++
			}
			return true
		})
	}
	if sites == 0 {
		t.Error("found no call of the queue at all; is the test looking at the right files?")
	}
}

// TestKisiWireStaysInKisi: Kisi's error codes and headers appear only in
// connector/kisi (and lockctl, which implements them); everything else
// speaks in domain values (connector.Refusal).
func TestKisiWireStaysInKisi(t *testing.T) {
	files := goFiles(t)
	wire := map[string]bool{"KISI-LOGIN": true, "KISI-GROUP-LINK": true, "X-Collection-Range": true}
	ast.Inspect(files["connector/kisi/errors.go"], func(n ast.Node) bool {
		if kv, ok := n.(*ast.KeyValueExpr); ok {
			if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				code, _ := strconv.Unquote(lit.Value)
				wire[code] = true
			}
		}
		return true
	})
	if len(wire) < 10 {
		t.Fatalf("found only %d Kisi codes and headers in connector/kisi/errors.go", len(wire))
	}
	for path, f := range files {
		if owns(path, "connector/kisi/", "lockctl/") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, _ := strconv.Unquote(lit.Value); wire[s] {
					t.Errorf("%s uses Kisi's %q: the wire format belongs to connector/kisi", path, s)
				}
			}
			return true
		})
	}
}
