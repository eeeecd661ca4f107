package lockctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/fixtures"
)

// kisiFixtures returns the captured Kisi request and response bodies, to
// seed the corpus.
func kisiFixtures(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, name := range fixtures.KisiJSONNames() {
		out = append(out, fixtures.Kisi(name))
	}
	return out
}

// FuzzAPI sends arbitrary bodies, paths and credentials to the JSON API
// that links and unlocks go through: creating and patching group links and
// unlocking as a link holder. Whatever arrives, the controller must not
// panic or answer 5xx, and every error must be a JSON body.
func FuzzAPI(f *testing.F) {
	e := newEnv(f, nil)
	site := e.site()
	link := decode[createdLink](f, e.must(200, req{method: "POST", path: "/group_links", auth: admin(),
		body: map[string]any{"group_link": map[string]any{"name": "Fuzz Guest", "group_id": site.visitors,
			"valid_from": "2026-03-02T08:00:00Z", "valid_until": "2026-03-02T18:00:00Z"}}}))

	for _, b := range kisiFixtures(f) {
		for op := range byte(4) {
			f.Add(op, "", b, "")
		}
	}
	f.Add(byte(0), "", []byte(`{"group_link":{"name":"A","group_id":1,"valid_from":"2026-03-02T08:00:00Z","valid_until":"2026-03-01T08:00:00Z"}}`), "")
	f.Add(byte(0), "", []byte(`{"group_link":{"name":"","group_id":-1,"email":"not an email","valid_until":"9999-99-99"}}`), "")
	f.Add(byte(1), "", []byte(`{"group_link":{"valid_until":null,"link_enabled":"yes"}}`), "")
	f.Add(byte(1), "99999999999999999999", []byte(`{}`), "")
	f.Add(byte(2), "", []byte(``), "")
	f.Add(byte(2), "-1", []byte(`{"context":{"location":{"latitude":"x"}}}`), "KISI-GROUP-LINK ")
	f.Add(byte(3), "?limit=-5&offset=abc", []byte(nil), "KISI-LOGIN \x00")
	f.Add(byte(0), "", []byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`), "Bearer x")

	f.Fuzz(func(t *testing.T, op byte, suffix string, body []byte, auth string) {
		var method, path, cred string
		switch op % 4 {
		case 0:
			method, path, cred = "POST", "/group_links", admin()
		case 1:
			method, path, cred = "PATCH", fmt.Sprintf("/group_links/%d", link.ID), admin()
		case 2:
			method, path, cred = "POST", fmt.Sprintf("/locks/%d/unlock", site.front), holder(link.Secret)
		default:
			method, path, cred = "GET", "/group_links", admin()
		}
		if suffix != "" {
			path += "/" + strings.TrimLeft(suffix, "/")
		}
		if auth != "" {
			cred = auth
		}
		hr := httptest.NewRequest(method, "/", bytes.NewReader(body))
		// Set the path after building the request, so a fuzzed suffix
		// that is not a valid URL still reaches the router.
		hr.URL.Path = path
		hr.Header.Set("Content-Type", "application/json")
		if strings.ContainsAny(cred, "\r\n") {
			cred = strings.NewReplacer("\r", "", "\n", "").Replace(cred)
		}
		hr.Header.Set("Authorization", cred)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, hr)
		if rec.Code >= 500 {
			t.Fatalf("%s %q with body %q and auth %q: status %d, body %s", method, path, body, cred, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: error answer %d is not JSON: %q", method, path, rec.Code, rec.Body.String())
		}
	})
}
