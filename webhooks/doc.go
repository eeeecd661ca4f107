// Package webhooks owns the Envoy wire format: checking the X-Envoy-Signature
// of a delivery (Verify, Sign), turning a {meta, payload} body into a
// normalized connector.Event with a key to de-duplicate it by (Parse), and
// receiving deliveries over HTTP.
//
// Of the project's packages it imports only connector and the root package;
// it must not import mappings, jobs, web or lockctl. Storing deliveries and
// queueing work are done through interfaces it declares.
package webhooks
