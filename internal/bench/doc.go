// Package bench drives a running latchkey over loopback with signed Envoy
// webhooks and guest pass unlocks, and measures what a user would notice:
// webhook acknowledgement, the time until a pass opens a door after sign-in
// and stops after sign-out, unlock decisions, and the server's CPU and
// memory. It also measures the machine's ceiling (a bare echo handler and a
// single-row insert transaction) so the figures can be read as ratios, and
// can bulk-seed visits and links to measure how cost grows with the data.
//
// It talks to the server only over HTTP, except for the insert ceiling and
// seeding, which use the server's database directly. It imports the domain
// packages only for their table models and the webhook signature.
package bench
