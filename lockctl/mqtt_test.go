package lockctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/internal/testenv"
)

const brokerURL = "tcp://127.0.0.1:1883"

// relayClient connects a test client that plays the relay, or skips the
// test when no broker answers.
func relayClient(t *testing.T) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("lockctl-test-%d", time.Now().UnixNano())).SetConnectTimeout(2 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Skipf("no MQTT broker at 127.0.0.1:1883: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c mqtt.Client, topic string, retained bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func TestMQTTDriverUnlocksThroughBroker(t *testing.T) {
	relay := relayClient(t)
	secret, err := newSecret()
	if err != nil {
		t.Fatal(err)
	}
	prefix := "latchkey-test/" + secret[:10]

	e := newEnv(t, nil)
	f := e.site()
	statusTopic := fmt.Sprintf("%s/%d/status", prefix, f.front)
	// A retained "offline" published before the driver starts is picked
	// up on subscribe.
	publish(t, relay, statusTopic, true, "offline")
	t.Cleanup(func() { publish(t, relay, statusTopic, true, "") })

	cmds := make(chan []byte, 10)
	sub := relay.Subscribe(fmt.Sprintf("%s/+/set", prefix), 1, func(_ mqtt.Client, m mqtt.Message) {
		if m.Topic() == fmt.Sprintf("%s/%d/set", prefix, f.front) {
			cmds <- m.Payload()
		}
	})
	if !sub.WaitTimeout(5*time.Second) || sub.Error() != nil {
		t.Fatalf("subscribe: %v", sub.Error())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	drv, err := NewMQTTDriver(ctx, brokerURL, prefix, testenv.Logger(t))
	if err != nil {
		t.Fatalf("connect driver: %v", err)
	}
	t.Cleanup(drv.Close)
	c := New(testenv.Logger(t), e.c.store.db, drv, nil, Options{AdminAPIKey: adminKey, Now: e.clock.Now, SimUnlockDuration: 3 * time.Second})
	e.c, e.h = c, c.Handler()
	l := e.link(f.visitors, nil)

	waitOnline := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			lk := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/locks/%d", f.front), auth: admin()}))
			if lk["online"] == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("lock never became online=%v", want)
	}
	waitOnline(false)
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)}), 403, CodeLockOffline)

	publish(t, relay, statusTopic, true, `{"online":true}`)
	waitOnline(true)
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)})

	var cmd map[string]any
	select {
	case raw := <-cmds:
		if err := json.Unmarshal(raw, &cmd); err != nil {
			t.Fatalf("command %s is not JSON: %v", raw, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no unlock command reached the broker")
	}
	evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=lock.unlock&success=true", auth: admin()}))
	if len(evs) != 1 {
		t.Fatalf("%d successful unlock events, want 1", len(evs))
	}
	want := map[string]any{"action": "unlock", "duration_s": 3.0, "request_id": evs[0].UUID}
	if d := cmp.Diff(want, cmd); d != "" {
		t.Errorf("published command (-want +got):\n%s", d)
	}
	online := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/events?type=lock.online,lock.offline&object_id=%d", f.front), auth: admin()}))
	if len(online) != 2 || online[0].Type != "lock.online" || online[1].Type != "lock.offline" {
		t.Errorf("connectivity events %+v", online)
	}

	// The relay reports its state; the lock follows.
	publish(t, relay, fmt.Sprintf("%s/%d/state", prefix, f.front), false, "unlocked")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if lk := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/locks/%d", f.front), auth: admin()})); lk["unlocked"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock never reported unlocked")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Once the driver is gone, an unlock is a 503 and a failed event.
	drv.Close()
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)}), 503, CodeDriverFailed)
	failed := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=lock.unlock&success=false&limit=1", auth: admin()}))
	if len(failed) != 1 || *failed[0].Code != CodeDriverFailed {
		t.Errorf("failed unlock events %+v", failed)
	}
}

func TestMQTTDriverNoBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := NewMQTTDriver(ctx, "tcp://127.0.0.1:1", "x", testenv.Logger(t)); err == nil {
		t.Fatal("connected to a port where no broker listens")
	}
}

func TestMQTTDriverRedactsCredentials(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := NewMQTTDriver(ctx, "tcp://door:s3cret-pass@127.0.0.1:1", "x", log)
	if err == nil {
		t.Fatal("connected to a port where no broker listens")
	}
	for what, s := range map[string]string{"error": fmt.Sprintf("%v", err), "log": logs.String()} {
		if strings.Contains(s, "s3cret-pass") {
			t.Errorf("%s shows the broker password: %s", what, s)
		}
	}
	if !strings.Contains(err.Error(), "tcp://door:xxxxx@127.0.0.1:1") {
		t.Errorf("error %q does not name the broker (redacted)", err)
	}
	if got := redactURL("tcp://a:b@h:1/%zz"); strings.Contains(got, ":b@") {
		t.Errorf("redactURL of an unparsable URL shows the password: %q", got)
	}
}
