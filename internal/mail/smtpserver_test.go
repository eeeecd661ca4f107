package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// envelope is one message as the test server received it.
type envelope struct {
	From string
	To   []string
	Data []byte
	User string // authenticated user, if any
	TLS  bool   // whether the session was encrypted
}

// serverOptions configures a testServer.
type serverOptions struct {
	User, Pass  string   // when User is set, AUTH is required
	RcptErr     error    // returned for every RCPT TO
	DataErr     error    // returned after reading DATA
	StartTLS    bool     // offer STARTTLS with a self-signed certificate
	ImplicitTLS bool     // speak TLS from the first byte (smtps)
	Mechs       []string // AUTH mechanisms offered; default PLAIN, LOGIN, CRAM-MD5
}

// testServer is a real SMTP server on 127.0.0.1 that records what it
// receives.
type testServer struct {
	Addr string
	opts *serverOptions

	mu   sync.Mutex
	msgs []envelope
}

func newTestServer(tb testing.TB, opts *serverOptions) *testServer {
	tb.Helper()
	if opts == nil {
		opts = &serverOptions{}
	}
	ts := &testServer{opts: opts}
	s := smtp.NewServer(ts)
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.MaxMessageBytes = 10 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	if opts.StartTLS || opts.ImplicitTLS {
		cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(tb)}, MinVersion: tls.VersionTLS12}
		if opts.StartTLS {
			s.TLSConfig = cfg
		}
		if opts.ImplicitTLS {
			l = tls.NewListener(l, cfg)
		}
	}
	ts.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	tb.Cleanup(func() {
		_ = s.Close()
		// Close misses a listener that Serve has not registered yet.
		_ = l.Close()
		<-done
	})
	return ts
}

// messages returns what the server has accepted so far.
func (ts *testServer) messages() []envelope {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]envelope(nil), ts.msgs...)
}

// NewSession implements smtp.Backend.
func (ts *testServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &testSession{ts: ts, env: envelope{TLS: isTLS}, conn: c}, nil
}

type testSession struct {
	ts     *testServer
	conn   *smtp.Conn
	env    envelope
	authed bool
}

func (s *testSession) AuthMechanisms() []string {
	if s.ts.opts.Mechs != nil {
		return s.ts.opts.Mechs
	}
	return []string{sasl.Plain, sasl.Login, "CRAM-MD5"}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.ts.opts.User || pass != s.ts.opts.Pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		s.env.User = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "CRAM-MD5":
		return &cramMD5Server{secret: s.ts.opts.Pass, check: func(user string, ok bool) error {
			if !ok || user != s.ts.opts.User {
				return smtp.ErrAuthFailed
			}
			s.authed = true
			s.env.User = user
			return nil
		}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ts.opts.User != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	_, s.env.TLS = s.conn.TLSConnectionState()
	s.env.From = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.opts.RcptErr != nil {
		return s.ts.opts.RcptErr
	}
	s.env.To = append(s.env.To, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.ts.opts.DataErr != nil {
		return s.ts.opts.DataErr
	}
	env := s.env
	env.Data = b
	s.ts.mu.Lock()
	s.ts.msgs = append(s.ts.msgs, env)
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Reset() {
	s.env = envelope{User: s.env.User, TLS: s.env.TLS}
}

func (s *testSession) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl only ships
// as a client.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // initial response carries the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// cramMD5Server is the server side of AUTH CRAM-MD5 (RFC 2195).
type cramMD5Server struct {
	secret    string
	check     func(user string, ok bool) error
	challenge []byte
}

func (c *cramMD5Server) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = []byte("<1896.697170952@localhost>")
		return c.challenge, false, nil
	}
	user, digest, ok := strings.Cut(string(resp), " ")
	if !ok {
		return nil, true, errors.New("malformed CRAM-MD5 response")
	}
	mac := hmac.New(md5.New, []byte(c.secret))
	mac.Write(c.challenge)
	return nil, true, c.check(user, hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(digest)))
}

// selfSigned returns a throwaway certificate for 127.0.0.1 and localhost.
func selfSigned(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
