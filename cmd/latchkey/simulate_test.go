package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSimulateHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"simulate", "-h"}, {"simulate", "sign-in", "-h"}, {"simulate", "sign-out", "--help"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, mapEnv(nil), &out); err != nil {
			t.Errorf("%v: err = %v, want nil", args, err)
		}
		if !strings.Contains(out.String(), "-url") && !strings.Contains(out.String(), "usage: latchkey simulate") {
			t.Errorf("%v printed %q, want the flags or the usage", args, out.String())
		}
	}
}

func TestSimulateBadFlagNamesIt(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"simulate", "sign-in", "--nmae", "x"}, mapEnv(nil), &out)
	if err == nil || !strings.Contains(err.Error(), "nmae") {
		t.Errorf("err = %v, want one naming the unknown flag", err)
	}
}

func TestURLForAddr(t *testing.T) {
	for addr, want := range map[string]string{
		":9090":          "http://127.0.0.1:9090",
		"0.0.0.0:9090":   "http://127.0.0.1:9090",
		"[::]:9090":      "http://127.0.0.1:9090",
		"127.0.0.2:81":   "http://127.0.0.2:81",
		"localhost:8081": "http://localhost:8081",
		"[::1]:8082":     "http://[::1]:8082",
		"nonsense":       "http://127.0.0.1:8080",
	} {
		if got := urlForAddr(addr); got != want {
			t.Errorf("urlForAddr(%q) = %q, want %q", addr, got, want)
		}
	}
}

// simulate finds the server from --url, else LATCHKEY_URL, else
// LATCHKEY_ADDR; a sign-out carries a name only when one is given.
func TestSimulateTargetAndSignOutName(t *testing.T) {
	type got struct {
		path string
		body map[string]any
	}
	hits := make(chan got, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b map[string]any
		_ = json.Unmarshal(raw, &b)
		hits <- got{r.URL.Path, b}
		_, _ = io.WriteString(w, `{"message":"accepted"}`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	attrs := func(g got) map[string]any {
		return g.body["payload"].(map[string]any)["attributes"].(map[string]any)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want func(t *testing.T, a map[string]any)
	}{
		{"addr, sign-out without name", map[string]string{"LATCHKEY_ADDR": addr}, []string{"simulate", "sign-out", "--email", "ada@example.com"},
			func(t *testing.T, a map[string]any) {
				if n, ok := a["full-name"]; ok {
					t.Errorf("sign-out sent full-name %v, want none", n)
				}
			}},
		{"LATCHKEY_URL wins over addr", map[string]string{"LATCHKEY_URL": srv.URL, "LATCHKEY_ADDR": "127.0.0.1:1"}, []string{"simulate", "sign-out", "--name", "Ada Lovelace"},
			func(t *testing.T, a map[string]any) {
				if a["full-name"] != "Ada Lovelace" {
					t.Errorf("sign-out full-name %v, want the given one", a["full-name"])
				}
			}},
		{"--url wins, sign-in has a default name", map[string]string{"LATCHKEY_URL": "http://127.0.0.1:1"}, []string{"simulate", "sign-in", "--url", srv.URL + "/"},
			func(t *testing.T, a map[string]any) {
				if a["full-name"] != "Jane Visitor" {
					t.Errorf("sign-in full-name %v, want the default", a["full-name"])
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"LATCHKEY_ENVOY_SECRET": "simulate-test-secret-0123", "LATCHKEY_DATA_DIR": t.TempDir()}
			for k, v := range c.env {
				env[k] = v
			}
			var out bytes.Buffer
			if err := run(context.Background(), c.args, mapEnv(env), &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			g := <-hits
			if g.path != "/webhooks/envoy" {
				t.Errorf("posted to %s, want /webhooks/envoy", g.path)
			}
			c.want(t, attrs(g))
		})
	}
}
