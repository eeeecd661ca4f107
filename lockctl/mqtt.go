package lockctl

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/latchkey/latchkey"
)

// MQTTDriver drives relays through an MQTT broker such as Mosquitto. An
// unlock is published with QoS 1 to "<prefix>/<lock id>/set" as
// {"action":"unlock","duration_s":N,"request_id":"…"}. Relays report
// connectivity on the retained topic "<prefix>/<lock id>/status" ("online" or
// "offline", or JSON {"online":bool}) and, optionally, their relay state on
// "<prefix>/<lock id>/state" ("locked"/"unlocked" or {"unlocked":bool}). It
// is safe for concurrent use.
type MQTTDriver struct {
	client  mqtt.Client
	prefix  string
	log     *slog.Logger
	timeout time.Duration

	mu     sync.Mutex
	watch  func(StateChange)
	online map[int64]bool
}

var _ Driver = (*MQTTDriver)(nil)

// mqttCommand is the payload published to <prefix>/<lock id>/set.
type mqttCommand struct {
	Action    string `json:"action"`
	DurationS int    `json:"duration_s"`
	RequestID string `json:"request_id"`
}

// NewMQTTDriver connects to brokerURL (e.g. tcp://127.0.0.1:1883) and
// subscribes to the status and state topics under prefix. It returns an
// Unavailable error when the broker does not answer before ctx ends (or
// within 10 s). The connection reconnects on its own; Close ends it.
func NewMQTTDriver(ctx context.Context, brokerURL, prefix string, log *slog.Logger) (*MQTTDriver, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		prefix = "latchkey/locks"
	}
	d := &MQTTDriver{prefix: prefix, log: log.With("component", "lockctl.mqtt"), timeout: 5 * time.Second,
		online: map[int64]bool{}}
	id, err := newSecret()
	if err != nil {
		return nil, err
	}
	scrub := scrubber(brokerURL)
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID("latchkey-lockctl-" + id[:12]).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectTimeout(5 * time.Second).
		SetOnConnectHandler(d.subscribe).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			d.log.Warn("mqtt connection lost", "err", scrub(err))
		})
	d.client = mqtt.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wait(ctx, d.client.Connect()); err != nil {
		d.client.Disconnect(0)
		return nil, latchkey.Wrap(latchkey.Unavailable, "mqtt broker unavailable", fmt.Errorf("connect %s: %s", redactURL(brokerURL), scrub(err)))
	}
	return d, nil
}

// scrubber returns a function that replaces the password of brokerURL in
// a text (paho's errors may quote the URL, e.g. for websockets).
func scrubber(brokerURL string) func(error) string {
	pass := ""
	if u, err := url.Parse(brokerURL); err == nil {
		pass, _ = u.User.Password()
	}
	return func(err error) string {
		if err == nil {
			return ""
		}
		if pass == "" {
			return err.Error()
		}
		return strings.ReplaceAll(err.Error(), pass, "xxxxx")
	}
}

// redactURL returns raw with any password replaced by "xxxxx", for logs and
// errors. A URL that does not parse is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// wait waits for an MQTT token or the end of ctx.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *MQTTDriver) subscribe(c mqtt.Client) {
	filters := map[string]byte{d.prefix + "/+/status": 1, d.prefix + "/+/state": 1}
	t := c.SubscribeMultiple(filters, d.receive)
	go func() {
		if t.WaitTimeout(d.timeout) && t.Error() != nil {
			d.log.Error("mqtt subscribe", "err", t.Error())
		}
	}()
}

// receive handles one status or state message.
func (d *MQTTDriver) receive(_ mqtt.Client, m mqtt.Message) {
	rest, ok := strings.CutPrefix(m.Topic(), d.prefix+"/")
	if !ok {
		return
	}
	idText, kind, ok := strings.Cut(rest, "/")
	lockID, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || len(m.Payload()) == 0 {
		return
	}
	sc := StateChange{LockID: lockID, At: time.Now()}
	switch kind {
	case "status":
		v, ok := parseFlag(m.Payload(), "online", "online", "offline")
		if !ok {
			d.log.Warn("mqtt bad status payload", "lock_id", lockID)
			return
		}
		sc.Online = &v
	case "state":
		v, ok := parseFlag(m.Payload(), "unlocked", "unlocked", "locked")
		if !ok {
			d.log.Warn("mqtt bad state payload", "lock_id", lockID)
			return
		}
		sc.Unlocked = &v
	default:
		return
	}
	d.mu.Lock()
	if sc.Online != nil {
		d.online[lockID] = *sc.Online
	}
	fn := d.watch
	d.mu.Unlock()
	if fn != nil {
		fn(sc)
	}
}

// parseFlag reads a boolean from a plain word (yes/no), a JSON boolean or a
// JSON object with key.
func parseFlag(p []byte, key, yes, no string) (bool, bool) {
	s := strings.ToLower(strings.Trim(strings.TrimSpace(string(p)), `"`))
	switch s {
	case yes, "true", "1", "on":
		return true, true
	case no, "false", "0", "off":
		return false, true
	}
	var obj map[string]any
	if json.Unmarshal(p, &obj) != nil {
		return false, false
	}
	switch v := obj[key].(type) {
	case bool:
		return v, true
	case string:
		return parseFlag([]byte(v), key, yes, no)
	}
	if v, ok := obj["status"].(string); ok {
		return parseFlag([]byte(v), key, yes, no)
	}
	if v, ok := obj["state"].(string); ok {
		return parseFlag([]byte(v), key, yes, no)
	}
	return false, false
}

// Watch implements Driver. The connectivity already known from retained
// status messages is replayed to fn at once.
func (d *MQTTDriver) Watch(fn func(StateChange)) {
	d.mu.Lock()
	d.watch = fn
	known := make([]StateChange, 0, len(d.online))
	for id, on := range d.online {
		known = append(known, StateChange{LockID: id, Online: ptr(on), At: time.Now()})
	}
	d.mu.Unlock()
	for _, sc := range known {
		fn(sc)
	}
}

// Unlock implements Driver: it publishes the unlock command with QoS 1 and
// waits for the broker's acknowledgement.
func (d *MQTTDriver) Unlock(ctx context.Context, lockID int64, dur time.Duration, requestID string) error {
	if !d.client.IsConnectionOpen() {
		return latchkey.Errorf(latchkey.Unavailable, "mqtt broker not connected")
	}
	secs := int(math.Ceil(dur.Seconds()))
	if secs < 1 {
		secs = 1
	}
	payload, err := json.Marshal(mqttCommand{Action: "unlock", DurationS: secs, RequestID: requestID})
	if err != nil {
		return fmt.Errorf("encode unlock command: %w", err)
	}
	topic := fmt.Sprintf("%s/%d/set", d.prefix, lockID)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if err := wait(ctx, d.client.Publish(topic, 1, false, payload)); err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "lock driver unavailable", fmt.Errorf("publish %s: %w", topic, err))
	}
	return nil
}

// Close disconnects from the broker. Later Unlocks fail.
func (d *MQTTDriver) Close() { d.client.Disconnect(250) }
