// Package kisi is the HTTP client for Kisi-compatible access controllers: the
// bundled lockctl and a real Kisi account (https://api.kisi.io). Client
// implements connector.AccessControl over Kisi's REST API: group links
// (create, list, delete, and update where the controller supports it),
// groups, and the link holder's lock list and unlock call.
//
// It is the only package of latchkey that makes outbound HTTP calls to a
// controller (connector/envoy makes those to Envoy). It imports the connector package and the root package only; it never imports
// lockctl, jobs, webhooks or web.
//
// The client owns the controller's traffic rules: a client-side rate limit
// (Kisi allows 5 requests per second per user), retries with backoff for
// transient failures, and the mapping of error answers to latchkey error
// kinds with a *connector.ControllerError as the cause.
//
// Retries: GET, PATCH and DELETE are retried on 429 (after Retry-After), 5xx
// and network errors. Kisi has no idempotency key, so POST /group_links is
// retried only on 429 and on connection errors before the request was sent
// (never on 5xx or a connection lost mid-call, which could leave a second
// live link), and an unlock is retried only on connection errors before the
// request was sent: a 429 or 5xx goes straight back to the person at the
// door.
package kisi
