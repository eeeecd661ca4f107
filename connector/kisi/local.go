package kisi

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/connector"
)

// Local is a Kisi-compatible controller in the same process as the
// Client, such as the bundled lockctl, asked for unlocks in memory: no
// request is built, routed or parsed. It speaks the wire protocol's terms
// all the same: the Authorization header value ("KISI-GROUP-LINK
// <secret>", "KISI-ACCESS-KEY <key>", "KISI-LOGIN <secret>"), the lock,
// the guest's address and user agent in, and the answer's HTTP status
// with Kisi's error code and message out. So the Client translates a
// refusal exactly as it would over HTTP, and knows nothing of the
// controller's insides.
type Local interface {
	UnlockInProcess(ctx context.Context, authorization string, lockID int64, clientIP, userAgent string) (status int, code, message string)
}

// unlockLocal sends the unlock call c to the in-process controller.
func (cl *Client) unlockLocal(ctx context.Context, c call, lockID int64) error {
	scheme := c.scheme
	if scheme == "" {
		scheme = "KISI-GROUP-LINK"
	}
	// As over HTTP from this process: the guest's address when it is
	// one, else loopback.
	ip, agent := "127.0.0.1", userAgent
	if ci, ok := connector.ClientInfoFrom(ctx); ok {
		if a := net.ParseIP(strings.TrimSpace(ci.IP)); a != nil {
			ip = a.String()
		}
		if ci.UserAgent != "" {
			agent = ci.UserAgent + " " + userAgent
		}
	}
	status, code, msg, err := cl.askLocal(ctx, c, scheme+" "+c.secret, lockID, ip, agent)
	if err != nil {
		return wrapOp(c, unreachable(err))
	}
	if status < 300 {
		return nil
	}
	ce := &connector.ControllerError{Status: status, Code: code, Message: msg, Refusal: refusals[code]}
	if ce.Message == "" {
		ce.Message = strings.ToLower(http.StatusText(status))
	}
	return wrapOp(c, cl.refusalError(c, ce))
}

// askLocal asks Local, through WrapTransport when one is set (so the call
// is timed like any other controller call): the request it sees carries
// only the method and URL, and nothing of it is sent anywhere.
func (cl *Client) askLocal(ctx context.Context, c call, authorization string, lockID int64, ip, agent string) (status int, code, msg string, err error) {
	if cl.opts.WrapTransport == nil {
		status, code, msg = cl.opts.Local.UnlockInProcess(ctx, authorization, lockID, ip, agent)
		return status, code, msg, nil
	}
	rt := cl.opts.WrapTransport(localTransport(func() int {
		status, code, msg = cl.opts.Local.UnlockInProcess(ctx, authorization, lockID, ip, agent)
		return status
	}))
	req, err := http.NewRequestWithContext(ctx, c.method, cl.base.JoinPath(c.path...).String(), nil)
	if err != nil {
		return 0, "", "", err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, "", "", err
	}
	_ = resp.Body.Close()
	return status, code, msg, nil
}

// localTransport answers a request with the status of one in-process call.
type localTransport func() int

func (t localTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: t(), Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}
