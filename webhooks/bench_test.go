package webhooks_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey/webhooks"
)

// BenchmarkWebhookIngest measures one signed sign-in delivery through the
// handler: verify, parse, store delivery and visit in one transaction.
// The queue is a recorder, so this is the database's share of ingest.
//
//	go test -run=^$ -bench=WebhookIngest -benchtime=3s ./webhooks/
func BenchmarkWebhookIngest(b *testing.B) {
	e := newEnv(b)
	body := fixture(b, "envoy-plugin-event-entry_sign_in.json")
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			bb := bytes.Replace(body, []byte(`"141649852"`), []byte(fmt.Sprintf(`"%d"`, 500000000+i)), 1)
			bb = bytes.Replace(bb, []byte(`292bed38-7cda-4da2-9569-aadaf6cf7767`), []byte(fmt.Sprintf("job-%d", i)), 1)
			req := httptest.NewRequest(http.MethodPost, "/webhooks/envoy", bytes.NewReader(bb))
			req.Header.Set("X-Envoy-Signature", webhooks.Sign(bb, secret))
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("got %d %s", rec.Code, rec.Body.String())
			}
		}
	})
}
