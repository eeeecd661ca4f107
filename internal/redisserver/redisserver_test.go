package redisserver

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestKeysExpireOnTheWallClock(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "lease", "a", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.SetNX(ctx, "lease", "b", time.Second).Result(); ok {
		t.Fatal("SetNX took a key whose TTL has not run out")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if ok, _ := c.SetNX(ctx, "lease", "b", time.Second).Result(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 300ms TTL still there after 3s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
