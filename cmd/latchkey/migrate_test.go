package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/schema"
	"github.com/latchkey/latchkey/internal/testenv"
)

// TestReplicasMigrateTogether starts the migrations of three replicas at
// once on one fresh database: all succeed.
func TestReplicasMigrateTogether(t *testing.T) {
	if !testenv.Postgres() {
		t.Skip("concurrent migrations matter on PostgreSQL (set TEST_DATABASE_URL)")
	}
	dsn, _ := testenv.DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		db, err := database.Open(ctx, dsn, "", testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { database.Close(db) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- schema.Migrate(ctx, db, true)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a replica's migration failed: %v", err)
		}
	}
}
