package database_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/testenv"
)

// A process whose clock is 30 s fast still reads the database's time.
func TestClockCorrectsASkewedProcess(t *testing.T) {
	db := testenv.DB(t)
	fast := func() time.Time { return time.Now().Add(30 * time.Second) }
	c := database.NewClock(db, fast)
	off, err := c.Measure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// This machine's clock is the database's (same host), so the offset is
	// the skew given, to within a little.
	if d := off + 30*time.Second; d < -500*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("offset %s, want about -30s", off)
	}
	if d := time.Until(c.Now()); d < -500*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("Now() is %s off the true time, want about 0", d)
	}
	at := time.Now().Add(time.Minute)
	if d := c.ToLocal(at).Sub(at.Add(30 * time.Second)); d < -500*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("ToLocal is %s off, want the local clock's reading at that moment", d)
	}
}
