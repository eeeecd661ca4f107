package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey/latchkey/webhooks"
)

// contract drives real requests through a stack and checks each request
// and its answer against the served OpenAPI document.
type contract struct {
	t       *testing.T
	s       *ptStack
	doc     *openapi3.T
	router  routers.Router
	covered map[string]bool // operation ids seen, with "method path" for those without
}

// call is one request of the suite. check says whether the request itself
// must match the document: false for requests that are wrong on purpose
// (no key, bad signature, a bad query), whose answers must still match.
type call struct {
	method, path string
	body         string
	header       map[string]string
	wantStatus   int
	checkRequest bool
}

func newContract(t *testing.T) *contract {
	t.Helper()
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
	s := newPTStack(t, ptOptions{})
	wh := webhooks.NewHandler(s.logger, s.svc, []string{ptEnvoySecret}, prometheus.NewRegistry()).WithInstaller(s.svc)
	wh.Register(s.srv.Group("/webhooks"))
	wh.RegisterRoutes(s.srv.Group("/envoy/routes"))

	// The document is public: no key.
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/v1/openapi.json without a key: %d %q, want 200 JSON", rec.Code, rec.Header().Get("Content-Type"))
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("document is OpenAPI %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	// The router matches on the server URL; requests here go to one host.
	doc.Servers = openapi3.Servers{{URL: "http://latchkey.test"}}
	router, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{t: t, s: s, doc: doc, router: router, covered: map[string]bool{}}
}

// authenticate checks that a request carries the credential its operation
// asks for; the server decides whether it is the right one.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "bearer":
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return fmt.Errorf("no bearer key")
		}
	case "envoySignature":
		if r.Header.Get("X-Envoy-Signature") == "" {
			return fmt.Errorf("no X-Envoy-Signature")
		}
	default:
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	return nil
}

// do makes c, checks it against the document and returns the answer's
// body.
func (k *contract) do(c call) []byte {
	k.t.Helper()
	ctx := context.Background()
	req := httptest.NewRequest(c.method, "http://latchkey.test"+c.path, strings.NewReader(c.body))
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for h, v := range c.header {
		req.Header.Set(h, v)
	}
	route, params, err := k.router.FindRoute(req)
	if err != nil {
		k.t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
		return nil
	}
	id := route.Operation.OperationID
	if id == "" {
		id = c.method + " " + route.Path
	}
	k.covered[id] = true
	opts := &openapi3filter.Options{AuthenticationFunc: authenticate, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if c.checkRequest {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			k.t.Errorf("%s %s: the request does not match the document: %v", c.method, c.path, err)
		}
		// Validation read the body; give the server a fresh one.
		req.Body = io.NopCloser(strings.NewReader(c.body))
	}
	rec := httptest.NewRecorder()
	k.s.srv.ServeHTTP(rec, req)
	if c.wantStatus != 0 && rec.Code != c.wantStatus {
		k.t.Errorf("%s %s: got %d, want %d: %.300s", c.method, c.path, rec.Code, c.wantStatus, rec.Body)
	}
	body := rec.Body.Bytes()
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(body)), Options: opts}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		k.t.Errorf("%s %s: the %d answer does not match the document: %v\n%.500s", c.method, c.path, rec.Code, err, body)
	}
	return body
}

func bearer() map[string]string { return map[string]string{"Authorization": "Bearer " + ptAdminKey} }

func signed(body []byte) map[string]string {
	return map[string]string{"X-Envoy-Signature": webhooks.Sign(body, ptEnvoySecret)}
}

// TestOpenAPIDescribesTheAPI validates real requests and answers of every
// documented operation against GET /api/v1/openapi.json: the admin API,
// the Envoy webhook and the guest pass, with successes and refusals. An
// operation the suite does not drive fails the test, so the document and
// the suite grow together.
func TestOpenAPIDescribesTheAPI(t *testing.T) {
	k := newContract(t)
	k.do(call{method: http.MethodGet, path: "/api/v1/openapi.json", wantStatus: 200, checkRequest: true})

	// The Envoy webhook: a sign-in, its repeat, a bad signature, a body
	// latchkey refuses.
	g := ptGuest{ID: "770001", Name: "Ada Lovelace", Email: "ada@example.com"}
	signIn := ptSignInBody(t, g, k.s.clock.Now())
	var accepted struct {
		Status  string `json:"status"`
		VisitID int64  `json:"visit_id"`
	}
	if err := json.Unmarshal(k.do(call{method: http.MethodPost, path: "/webhooks/envoy", body: string(signIn), header: signed(signIn), wantStatus: 202, checkRequest: true}), &accepted); err != nil || accepted.VisitID == 0 {
		t.Fatalf("webhook answer: %+v %v", accepted, err)
	}
	k.do(call{method: http.MethodPost, path: "/webhooks/envoy", body: string(signIn), header: signed(signIn), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodPost, path: "/webhooks/envoy", body: string(signIn), header: map[string]string{"X-Envoy-Signature": "00"}, wantStatus: 401, checkRequest: true})
	refused := []byte(`{"meta":{"event":"entry_sign_in"},"payload":{"id":"1","type":"entries"}}`)
	k.do(call{method: http.MethodPost, path: "/webhooks/envoy", body: string(refused), header: signed(refused), wantStatus: 400, checkRequest: true})
	visit, pass := k.s.resync(accepted.VisitID)

	// Mappings.
	k.do(call{method: http.MethodGet, path: "/api/v1/mappings", header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/mappings?location_id=" + ptLocation, header: bearer(), wantStatus: 200, checkRequest: true})
	newMapping := `{"location_id":"177837","flow_id":"400001","group_ids":[1],"duration_minutes":120,"advance_minutes":15,"only_invited":false,"revoke_on_sign_out":true,"grace_minutes":5,"until_end_of_day":false,"delivery":"latchkey","app_access":false,"guest_indicator":""}`
	var created struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(k.do(call{method: http.MethodPost, path: "/api/v1/mappings", body: newMapping, header: bearer(), wantStatus: 201, checkRequest: true}), &created); err != nil || created.ID == 0 {
		t.Fatalf("created mapping: %+v %v", created, err)
	}
	k.do(call{method: http.MethodPost, path: "/api/v1/mappings", body: newMapping, header: bearer(), wantStatus: 409, checkRequest: true})
	k.do(call{method: http.MethodPost, path: "/api/v1/mappings", body: `{"location_id":"177837","flow_id":"400002","group_ids":[],"duration_minutes":-5}`,
		header: bearer(), wantStatus: 400, checkRequest: false})
	mpath := fmt.Sprintf("/api/v1/mappings/%d", created.ID)
	k.do(call{method: http.MethodGet, path: mpath, header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodPut, path: mpath, body: strings.Replace(newMapping, `"duration_minutes":120`, `"duration_minutes":90`, 1), header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/mappings/999999", header: bearer(), wantStatus: 404, checkRequest: true})
	k.do(call{method: http.MethodPost, path: "/api/v1/mappings/preview", header: bearer(), wantStatus: 200, checkRequest: true,
		body: fmt.Sprintf(`{"mapping_id":%d,"kind":"invite","arrival":"2026-12-02T09:00:00Z","time_zone":"Europe/Berlin"}`, created.ID)})
	k.do(call{method: http.MethodPost, path: "/api/v1/mappings/preview", header: bearer(), wantStatus: 200, checkRequest: true,
		body: `{"mapping":` + newMapping + `,"kind":"walk-in","arrival":"2026-12-02T09:00:00Z"}`})
	k.do(call{method: http.MethodPost, path: "/api/v1/mappings/preview", header: bearer(), wantStatus: 400, checkRequest: true, body: `{"arrival":"2026-12-02T09:00:00Z"}`})
	k.do(call{method: http.MethodDelete, path: mpath, header: bearer(), wantStatus: 204, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/groups", header: bearer(), wantStatus: 200, checkRequest: true})

	// Visits.
	k.do(call{method: http.MethodGet, path: "/api/v1/visits", header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/visits?status=active&limit=10&offset=0&q=Ada", header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/visits?status=bogus", header: bearer(), wantStatus: 400, checkRequest: false})
	k.do(call{method: http.MethodGet, path: "/api/v1/visits", wantStatus: 401, checkRequest: false})
	k.do(call{method: http.MethodGet, path: "/api/v1/visits", header: map[string]string{"Authorization": "Bearer wrong-key-0123456789"}, wantStatus: 401, checkRequest: true})
	vpath := fmt.Sprintf("/api/v1/visits/%d", visit.ID)
	k.do(call{method: http.MethodGet, path: vpath, header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/visits/999999", header: bearer(), wantStatus: 404, checkRequest: true})
	k.do(call{method: http.MethodPost, path: vpath + "/extend", body: `{"minutes":60}`, header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodPost, path: vpath + "/extend", body: `{"minutes":0}`, header: bearer(), wantStatus: 400, checkRequest: false})
	k.do(call{method: http.MethodPost, path: vpath + "/resend", header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodPost, path: vpath + "/email", body: `{"email":"ada.lovelace@example.com"}`, header: bearer(), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodPost, path: vpath + "/email", body: `{"email":"Ada <ada@example.com>"}`, header: bearer(), wantStatus: 400, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/api/v1/outbox?to=ada.lovelace@example.com", header: bearer(), wantStatus: 200, checkRequest: true})

	// A guest visit (mapping credential guest): its detail names the
	// person and the role assignment behind the pass, with the window.
	guestMapping := strings.NewReplacer(`"flow_id":"400001"`, `"flow_id":"400003"`, `"delivery":"latchkey"`, `"delivery":"latchkey","credential":"guest"`).Replace(newMapping)
	k.do(call{method: http.MethodPost, path: "/api/v1/mappings", body: guestMapping, header: bearer(), wantStatus: 201, checkRequest: true})
	var body map[string]any
	if err := json.Unmarshal(ptSignInBody(t, ptGuest{ID: "770003", Name: "Grace Hopper", Email: "grace@example.com"}, k.s.clock.Now()), &body); err != nil {
		t.Fatal(err)
	}
	body["payload"].(map[string]any)["relationships"].(map[string]any)["flow"].(map[string]any)["data"].(map[string]any)["id"] = "400003"
	guestSignIn, _ := json.Marshal(body)
	if err := json.Unmarshal(k.do(call{method: http.MethodPost, path: "/webhooks/envoy", body: string(guestSignIn), header: signed(guestSignIn), wantStatus: 202, checkRequest: true}), &accepted); err != nil {
		t.Fatal(err)
	}
	guestVisit, guestPass := k.s.resync(accepted.VisitID)
	var detail struct {
		ValidFrom  time.Time `json:"valid_from"`
		ValidUntil time.Time `json:"valid_until"`
		Person     *struct {
			Credential string `json:"credential"`
			PersonID   int64  `json:"person_id"`
			Roles      []struct {
				GroupID          int64     `json:"group_id"`
				RoleAssignmentID int64     `json:"role_assignment_id"`
				ValidFrom        time.Time `json:"valid_from"`
				ValidUntil       time.Time `json:"valid_until"`
			} `json:"roles"`
		} `json:"person"`
	}
	if err := json.Unmarshal(k.do(call{method: http.MethodGet, path: fmt.Sprintf("/api/v1/visits/%d", guestVisit.ID), header: bearer(), wantStatus: 200, checkRequest: true}), &detail); err != nil {
		t.Fatal(err)
	}
	if p := detail.Person; p == nil || p.Credential != "guest" || p.PersonID == 0 || len(p.Roles) != 1 || p.Roles[0].GroupID != 1 || p.Roles[0].RoleAssignmentID == 0 ||
		!p.Roles[0].ValidFrom.Equal(detail.ValidFrom) || !p.Roles[0].ValidUntil.Equal(detail.ValidUntil) {
		t.Errorf("guest visit detail: person %+v, window %v – %v; want a guest with one role on group 1 over the window", detail.Person, detail.ValidFrom, detail.ValidUntil)
	}
	k.do(call{method: http.MethodGet, path: "/v/" + guestPass, wantStatus: 200, checkRequest: true})

	// The guest pass: the page, an unlock, a refused door, an unknown
	// pass; then the desk revokes and the pass refuses.
	k.do(call{method: http.MethodGet, path: "/v/" + pass, wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodGet, path: "/v/not-a-pass", wantStatus: 404, checkRequest: true})
	k.do(call{method: http.MethodPost, path: fmt.Sprintf("/v/%s/locks/%d/unlock", pass, ptFrontDoor), wantStatus: 200, checkRequest: true})
	k.do(call{method: http.MethodPost, path: fmt.Sprintf("/v/%s/locks/%d/unlock", pass, ptWorkshop), wantStatus: 403, checkRequest: true})
	k.do(call{method: http.MethodPost, path: fmt.Sprintf("/v/not-a-pass/locks/%d/unlock", ptFrontDoor), wantStatus: 404, checkRequest: true})
	k.do(call{method: http.MethodPost, path: vpath + "/revoke", header: bearer(), wantStatus: 200, checkRequest: true})
	k.s.resync(visit.ID)
	k.do(call{method: http.MethodPost, path: fmt.Sprintf("/v/%s/locks/%d/unlock", pass, ptFrontDoor), wantStatus: 403, checkRequest: true})

	// The Envoy setup routes: each step with its success and its
	// refusals, against the bundled controller.
	setup := func(route, config, params, payload string) call {
		b := []byte(`{"meta":{"route":"` + route + `","install_id":"9001","config":` + config + `,"params":` + params + `},"payload":` + payload + `}`)
		return call{method: http.MethodPost, path: "/envoy/routes/" + route, body: string(b), header: signed(b), checkRequest: true}
	}
	bad := setup("connect", `{}`, `{}`, `{"api_key":"k"}`)
	bad.header, bad.wantStatus, bad.checkRequest = map[string]string{"X-Envoy-Signature": "00"}, 401, true
	k.do(bad)
	refusedKey := setup("connect", `{}`, `{}`, `{"api_key":"wrong-key-0123456789"}`)
	refusedKey.wantStatus = 412
	k.do(refusedKey)
	noInstall := setup("connect", `{}`, `{}`, `{"api_key":"k"}`)
	noInstall.body = strings.Replace(noInstall.body, `"install_id":"9001"`, `"install_id":""`, 1)
	noInstall.header, noInstall.wantStatus, noInstall.checkRequest = signed([]byte(noInstall.body)), 400, false
	k.do(noInstall)
	connect := setup("connect", `{}`, `{}`, `{"api_key":"`+ptAdminKey+`"}`)
	connect.wantStatus = 200
	k.do(connect)
	placesCall := setup("places", `{}`, `{"search":"","page":1}`, `{}`)
	placesCall.wantStatus = 200
	var places []struct{ Label, Value string }
	if err := json.Unmarshal(k.do(placesCall), &places); err != nil || len(places) == 0 {
		t.Fatalf("places: %+v %v", places, err)
	}
	groupsCall := setup("groups", `{"places":["`+places[0].Value+`"]}`, `{"parent_resource_id":"`+ptFlow+`"}`, `{}`)
	groupsCall.wantStatus = 200
	var groups []struct{ Label, Value string }
	if err := json.Unmarshal(k.do(groupsCall), &groups); err != nil || len(groups) == 0 {
		t.Fatalf("groups: %+v %v", groups, err)
	}
	badGroup := setup("access", `{}`, `{}`, `{"visitor_access":{"`+ptFlow+`":["987654"]},"access_duration_minutes":60}`)
	badGroup.wantStatus = 412
	k.do(badGroup)
	accessCall := setup("access", `{}`, `{}`, `{"visitor_access":{"`+ptFlow+`":["`+groups[0].Value+`"]},"access_duration_minutes":60,"guest_indicator":true}`)
	accessCall.wantStatus = 200
	k.do(accessCall)

	// Every documented operation was driven.
	var missed []string
	for path, item := range k.doc.Paths.Map() {
		for method, op := range item.Operations() {
			id := op.OperationID
			if id == "" {
				id = method + " " + path
			}
			if !k.covered[id] {
				missed = append(missed, method+" "+path)
			}
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("documented operations the suite never drives: %v", missed)
	}
}

// TestOpenAPIValidatorCatchesDrift: the check is not vacuous. An answer
// that lacks a required field, or a status the document does not list,
// fails validation.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	k := newContract(t)
	req := httptest.NewRequest(http.MethodGet, "http://latchkey.test/api/v1/groups", nil)
	req.Header.Set("Authorization", "Bearer "+ptAdminKey)
	route, params, err := k.router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: authenticate, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"a group without its name", 200, `[{"id":1,"place_id":1,"locks_count":3}]`},
		{"an id that is a string", 200, `[{"id":"1","name":"Visitors","place_id":1,"locks_count":3}]`},
		{"an undocumented status", 418, `{"error":{"code":"teapot","message":"no"}}`},
	} {
		h := http.Header{"Content-Type": {"application/json"}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: tt.status, Header: h,
			Body: io.NopCloser(strings.NewReader(tt.body)), Options: opts}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err == nil {
			t.Errorf("%s: validation passed, want it to fail", tt.name)
		}
	}
}
