package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey/accounts"
)

// setupTokenFile is the file in the data dir that holds the first-run
// setup token while no user exists.
const setupTokenFile = "setup-token"

// prepareSetup returns the first-run token while no user exists, reading
// it from the data dir or creating it there (mode 0600). Once a user
// exists the token is dead: its file is removed and "" returned.
func prepareSetup(ctx context.Context, accts *accounts.Store, dataDir string) (string, error) {
	n, err := accts.CountUsers(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", removeSetupToken(dataDir)
	}
	tok, _, err := loadOrCreateKey(dataDir, setupTokenFile, 24)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setupTokenFile, err)
	}
	return tok, nil
}

// removeSetupToken deletes the first-run token's file; a missing file is
// no error.
func removeSetupToken(dataDir string) error {
	err := os.Remove(filepath.Join(dataDir, setupTokenFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", setupTokenFile, err)
	}
	return nil
}
