// Package web owns latchkey's HTTP surface for people and operators: the echo
// instance with its middleware, health and metrics endpoints, the admin API
// under /api/v1, the guest pass pages under /v/ and the front-desk pages.
// Other packages that own HTTP (webhooks, lockctl) mount their routes on the
// groups this server hands out.
//
// It imports connector, mappings, internal/* and the root package; nothing
// imports web but cmd.
package web
