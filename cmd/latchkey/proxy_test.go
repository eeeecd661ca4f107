package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// kisiGet fetches path from the bundled controller with the admin key.
func kisiGet(t testing.TB, base, key, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/lockctl"+path, nil)
	req.Header.Set("Authorization", "KISI-LOGIN "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /lockctl%s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestGuestAddressReachesBundledController: behind a trusted proxy, the
// guest's address travels from the pass page through the connector's
// in-memory call into the bundled controller's audit log.
func TestGuestAddressReachesBundledController(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	// The "proxy" is this test, connecting from 127.0.0.2; the server's
	// own in-memory calls come from 127.0.0.1, which is not trusted, so
	// only their in-process mark can carry the guest's address.
	p := d.serve(t, "serve", map[string]string{"LATCHKEY_TRUSTED_PROXIES": "127.0.0.2/32"}, "--demo")
	proxy := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	res := signIn(t, p.URL, d.EnvoySecret, walkInBody(t, nil))
	v := waitVisit(t, p.URL, d.AdminKey, res.VisitID, 15*time.Second, "synced with one link", syncedWithOneLink)

	const guest = "198.51.100.23"
	var locks []struct {
		ID int64 `json:"id"`
	}
	kisiGet(t, p.URL, d.AdminKey, "/locks", &locks)
	unlocked := false
	for _, l := range locks {
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/locks/%d/unlock", v.PassURL, l.ID), nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-For", guest)
		resp, err := proxy.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			unlocked = true
			break
		}
	}
	if !unlocked {
		t.Fatalf("no door of %d unlocked through the pass", len(locks))
	}
	var events []struct {
		Action   string  `json:"action"`
		Type     string  `json:"type"`
		ClientIP *string `json:"client_ip"`
	}
	kisiGet(t, p.URL, d.AdminKey, "/events", &events)
	for _, e := range events {
		if e.ClientIP != nil && *e.ClientIP == guest {
			return
		}
	}
	t.Errorf("no controller event records the guest's address %s: %+v", guest, events)
}
