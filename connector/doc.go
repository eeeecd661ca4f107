// Package connector is the core domain of latchkey: visitor events, the visit
// state machine, the access-window rules, the visit store and the reconciler
// that makes an access controller match a visit's desired state.
//
// It imports mappings and the root package only. It never imports lockctl,
// jobs, webhooks or web, and knows nothing of HTTP or queues: it drives the
// controller through the AccessControl interface (implemented by
// connector/kisi over Kisi's REST API).
package connector
