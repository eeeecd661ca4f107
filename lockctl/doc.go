// Package lockctl is latchkey's bundled, Kisi-compatible lock controller. It
// owns places, locks, groups and the locks each group opens (group_locks),
// group links (time-limited access links with a secret and an optional QR
// code), people (users with logins, guests with access keys) and their
// role assignments on groups, places and the organization, API logins, the
// audit events, and the lock drivers that move the actual relays (an
// in-memory simulator and an MQTT bridge).
//
// Its HTTP API speaks Kisi's wire format (protocols.md §2 and
// plugin-and-members.md part B): KISI-LOGIN, KISI-GROUP-LINK and
// KISI-ACCESS-KEY authorization, limit/offset paging with X-Collection-Range,
// bare JSON arrays, and errors as {"error","code"} or {"errors":{...}}.
// Controller.Register mounts the API on an echo group; Controller.Handler
// serves it alone.
//
// lockctl imports only the root package (latchkey) and internal/*. It must
// not import connector, mappings, jobs, webhooks, web or cmd: the connector
// talks to it over HTTP, exactly as it talks to real Kisi.
package lockctl
