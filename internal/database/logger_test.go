package database

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func TestLoggerRendersOnlyWhatItLogs(t *testing.T) {
	var buf bytes.Buffer
	cfg := logger.Config{SlowThreshold: 500 * time.Millisecond, LogLevel: logger.Warn, IgnoreRecordNotFoundError: true}
	l := newLogger(logger.NewSlogLogger(slog.New(slog.NewTextHandler(&buf, nil)), cfg), cfg)
	rendered := 0
	fc := func(sql string) func() (string, int64) {
		return func() (string, int64) { rendered++; return sql, 1 }
	}
	ctx := context.Background()
	now := time.Now()

	l.Trace(ctx, now, fc("SELECT fast"), nil)
	l.Trace(ctx, now, fc("INSERT duplicate"), gorm.ErrDuplicatedKey)
	l.Trace(ctx, now, fc("SELECT missing"), gorm.ErrRecordNotFound)
	if rendered != 0 || buf.Len() != 0 {
		t.Fatalf("quiet statements rendered %d times, logged %q", rendered, buf.String())
	}

	l.Trace(ctx, now.Add(-time.Second), fc("SELECT slow"), nil)
	l.Trace(ctx, now, fc("UPDATE broken"), errors.New("boom"))
	out := buf.String()
	for _, want := range []string{"SELECT slow", "UPDATE broken", "boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	if rendered != 2 {
		t.Errorf("rendered %d statements, want 2 (the slow and the failed one)", rendered)
	}

	buf.Reset()
	rendered = 0
	l.LogMode(logger.Info).Trace(ctx, now, fc("SELECT traced"), nil)
	if !strings.Contains(buf.String(), "SELECT traced") || rendered != 1 {
		t.Errorf("at Info every statement is logged; got %q", buf.String())
	}
	buf.Reset()
	l.LogMode(logger.Silent).Trace(ctx, now, fc("UPDATE silent"), errors.New("boom"))
	if buf.Len() != 0 {
		t.Errorf("silent logger logged %q", buf.String())
	}
}

func BenchmarkLoggerQuietStatement(b *testing.B) {
	cfg := logger.Config{SlowThreshold: 500 * time.Millisecond, LogLevel: logger.Warn, IgnoreRecordNotFoundError: true}
	l := newLogger(logger.NewSlogLogger(slog.New(slog.DiscardHandler), cfg), cfg)
	ctx := context.Background()
	fc := func() (string, int64) { return strings.Repeat("x", 200), 1 }
	for b.Loop() {
		l.Trace(ctx, time.Now(), fc, nil)
	}
}
