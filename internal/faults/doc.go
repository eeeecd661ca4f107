// Package faults holds the fault-injection tests: they build the latchkey
// binary once, run it as child processes against private Redis and
// PostgreSQL instances that the tests start, stop and restart themselves
// (never the machine's shared ones), and check that what was acknowledged
// is never lost and that every visit converges to its correct final state.
// A test whose tool is missing (redis-server, PostgreSQL's initdb) skips
// with a message. They run only with LATCHKEY_FAULT_TESTS=1, which .ci/run
// sets in a step of their own, so go test ./... stays quick. The package
// has no exported API and imports only webhooks, for the signature.
package faults
