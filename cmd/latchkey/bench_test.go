package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestBenchRefusesBadFlags(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--url", "http://192.0.2.1:8080"}, "only to loopback"},
		{[]string{"bench", "--url", "http://127.0.0.1:1", "--phases", "ingest,nap"}, `unknown phase "nap"`},
		{[]string{"bench", "--url", "http://127.0.0.1:1", "extra"}, "unexpected argument"},
	} {
		err := run(context.Background(), tc.args, getenv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
