package jobs

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis is a connection pool to the queue's Redis, shared by the client,
// worker, scheduler and inspector.
type Redis struct{ c redis.UniversalClient }

// ValidateRedisURL checks a REDIS_URL value without connecting.
func ValidateRedisURL(raw string) error {
	if _, err := redis.ParseURL(raw); err != nil {
		// Parse errors may quote the URL, password included: say less.
		return fmt.Errorf("want redis://[user:password@]host:port[/db] or rediss://…")
	}
	return nil
}

// OpenRedis connects to the Redis at rawURL (redis:// or rediss://).
func OpenRedis(rawURL string) (*Redis, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", ValidateRedisURL(rawURL))
	}
	opt.PoolSize = 20
	return &Redis{c: redis.NewClient(opt)}, nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close closes the pool.
func (r *Redis) Close() error { return r.c.Close() }
