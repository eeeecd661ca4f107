package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/internal/testenv"
)

// TestGeneratedKeysArePrivate: keys generated on first start are 0600 in a
// 0700 data folder.
func TestGeneratedKeysArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := &config{DataDir: dir}
	if err := ensureKeys(cfg, testenv.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if cfg.AdminAPIKey == "" || len(cfg.EnvoySecrets) != 1 || cfg.SecretKey == "" {
		t.Fatalf("keys not filled: %+v", cfg)
	}
	modes := map[string]os.FileMode{dir: 0o700}
	for _, f := range []string{"admin-api-key", "envoy-secret", "secret-key"} {
		modes[filepath.Join(dir, f)] = 0o600
	}
	for p, want := range modes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", p, got, want)
		}
	}
}
