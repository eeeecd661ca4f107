package kisi

import (
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/connector"
)

// Dialer opens Clients on Envoy installs' controller accounts: the same
// options as the process's client, another API key, and for the process's
// own controller URL the process's HTTP client and Local (the bundled
// lockctl is reached in memory); any other URL gets neither.
type Dialer struct {
	// URL is the process's controller URL; Options its client's options.
	URL     string
	Options Options
	// Other makes the requests to any other controller URL (nil: a
	// default client).
	Other *http.Client
}

var _ connector.Dialer = Dialer{}

// DefaultURL returns the process's controller URL.
func (d Dialer) DefaultURL() string { return d.URL }

// Dial returns a Client on controllerURL with apiKey.
func (d Dialer) Dial(controllerURL, apiKey string) (connector.AccessControl, error) {
	o := d.Options
	o.APIKey = apiKey
	if strings.TrimRight(controllerURL, "/") != strings.TrimRight(d.URL, "/") {
		o.HTTPClient, o.Local = d.Other, nil
	}
	return New(controllerURL, o)
}
