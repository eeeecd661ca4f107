package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/latchkey/latchkey"
)

// Default ports: smtp:// uses mail submission with STARTTLS (RFC 6409),
// smtps:// uses implicit TLS (RFC 8314).
const (
	defaultSMTPPort  = 587
	defaultSMTPSPort = 465
)

// SMTPOptions tunes an SMTPSender. The zero value works.
type SMTPOptions struct {
	// Timeout bounds connecting and each SMTP command. Zero means 15 seconds.
	Timeout time.Duration
	// HELO is the name sent in EHLO/HELO. Empty means the local host name.
	HELO string
}

// SMTPSender delivers messages through an SMTP server, one connection per
// message. It keeps no state between sends, so it cannot de-duplicate by
// Key itself; instead the Message-ID is derived from Key, which lets the
// receiving side recognise a resend. It is safe for concurrent use.
type SMTPSender struct {
	cfg      smtpConfig
	from     *netmail.Address
	timeout  time.Duration
	helo     string
	hostPort string
}

var _ Sender = (*SMTPSender)(nil)

// smtpConfig is a parsed SMTP URL.
type smtpConfig struct {
	host        string
	port        int
	implicitTLS bool
	policy      gomail.TLSPolicy
	skipVerify  bool
	user        string
	pass        string
	auth        gomail.SMTPAuthType // empty: no authentication
}

// NewSMTP returns a sender for the server named by rawURL, sending as from
// (an address such as "Latchkey <no-reply@example.com>").
//
// rawURL has the form smtp://user:pass@host:port?params or smtps://…:
//   - smtp:// (default port 587) upgrades with STARTTLS when the server offers
//     it; ?tls=required refuses servers without STARTTLS and ?tls=none never
//     upgrades.
//   - smtps:// (default port 465) uses implicit TLS.
//   - ?insecure_skip_verify=1 accepts any server certificate (test servers only).
//   - ?auth=plain|login|crammd5 picks the mechanism; plain is the default
//     when the URL has a user name, and without one no AUTH is attempted.
//
// NewSMTP does not connect. It returns a latchkey.Invalid error when the URL
// or from address is malformed; errors never contain the password.
func NewSMTP(rawURL string, from string, opts SMTPOptions) (*SMTPSender, error) {
	cfg, err := parseSMTPURL(rawURL)
	if err != nil {
		return nil, err
	}
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, latchkey.Errorf(latchkey.Invalid, "mail from address %q is invalid", from)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = gomail.DefaultTimeout
	}
	return &SMTPSender{
		cfg:      cfg,
		from:     addr,
		timeout:  timeout,
		helo:     opts.HELO,
		hostPort: cfg.host + ":" + strconv.Itoa(cfg.port),
	}, nil
}

// ValidateURL checks an SMTP_URL value without connecting, as NewSMTP would
// parse it. It returns a latchkey.Invalid error that names the problem
// (scheme, host, port, parameter) but never repeats the URL or password.
func ValidateURL(raw string) error {
	_, err := parseSMTPURL(raw)
	return err
}

func invalidURL(format string, args ...any) error {
	return latchkey.Errorf(latchkey.Invalid, "SMTP URL: "+format, args...)
}

func parseSMTPURL(raw string) (smtpConfig, error) {
	var cfg smtpConfig
	if strings.TrimSpace(raw) == "" {
		return cfg, invalidURL("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included; keep only the
		// reason, and not even that for escapes, which quote the input.
		var ue *url.Error
		var ee url.EscapeError
		switch {
		case errors.As(err, &ee):
			return cfg, invalidURL("malformed percent-escape (escape special characters in user and password)")
		case errors.As(err, &ue):
			return cfg, invalidURL("malformed: %v", ue.Err)
		default:
			return cfg, invalidURL("malformed")
		}
	}
	switch u.Scheme {
	case "smtp":
		cfg.port = defaultSMTPPort
		cfg.policy = gomail.TLSOpportunistic
	case "smtps":
		cfg.port = defaultSMTPSPort
		cfg.implicitTLS = true
		cfg.policy = gomail.TLSMandatory
	case "":
		return cfg, invalidURL("missing scheme, want smtp:// or smtps://")
	default:
		return cfg, invalidURL("scheme must be smtp or smtps, got %q", u.Scheme)
	}
	if u.Opaque != "" {
		return cfg, invalidURL("want %s://host[:port], got no host", u.Scheme)
	}
	cfg.host = u.Hostname()
	if cfg.host == "" {
		return cfg, invalidURL("missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return cfg, invalidURL("port must be 1-65535, got %q", p)
		}
		cfg.port = n
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, invalidURL("unexpected path %q", u.Path)
	}
	if u.User != nil {
		cfg.user = u.User.Username()
		cfg.pass, _ = u.User.Password()
	}

	q := u.Query()
	for k := range q {
		switch k {
		case "tls", "insecure_skip_verify", "auth":
		default:
			return cfg, invalidURL("unknown parameter %q (known: tls, insecure_skip_verify, auth)", k)
		}
	}
	switch v := q.Get("tls"); v {
	case "", "opportunistic":
	case "required":
		cfg.policy = gomail.TLSMandatory
	case "none":
		if cfg.implicitTLS {
			return cfg, invalidURL("tls=none contradicts smtps://, use smtp://")
		}
		cfg.policy = gomail.NoTLS
	default:
		return cfg, invalidURL("tls must be opportunistic, required or none, got %q", v)
	}
	switch v := q.Get("insecure_skip_verify"); v {
	case "", "0", "false":
	case "1", "true":
		cfg.skipVerify = true
	default:
		return cfg, invalidURL("insecure_skip_verify must be 1 or 0, got %q", v)
	}
	switch v := q.Get("auth"); v {
	case "":
		if cfg.user != "" {
			cfg.auth = gomail.SMTPAuthPlain
		}
	case "plain":
		cfg.auth = gomail.SMTPAuthPlain
	case "login":
		cfg.auth = gomail.SMTPAuthLogin
	case "crammd5":
		cfg.auth = gomail.SMTPAuthCramMD5
	default:
		return cfg, invalidURL("auth must be plain, login or crammd5, got %q", v)
	}
	if cfg.auth != "" && cfg.user == "" {
		return cfg, invalidURL("auth=%s needs a user name (smtp://user:pass@host)", q.Get("auth"))
	}
	return cfg, nil
}

// Send delivers m. It returns a latchkey.Invalid error when m is malformed
// or the server permanently refuses it (5xx, e.g. 550 mailbox unavailable,
// 535 bad credentials), and a latchkey.Unavailable error when the server
// cannot be reached, times out or answers with a transient 4xx reply, in
// which case sending again later may succeed.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	if err := validate(m); err != nil {
		return err
	}
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "smtp send canceled", err)
	}
	client, err := gomail.NewClient(s.cfg.host, s.clientOptions()...)
	if err != nil {
		return fmt.Errorf("smtp client for %s: %w", s.hostPort, s.scrub(err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return s.classify(err)
	}
	return nil
}

func (s *SMTPSender) clientOptions() []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithTLSPolicy(s.cfg.policy),
		gomail.WithTLSConfig(&tls.Config{
			ServerName:         s.cfg.host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: s.cfg.skipVerify, //nolint:gosec // opt-in for test servers
		}),
	}
	if s.cfg.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	}
	if s.helo != "" {
		opts = append(opts, gomail.WithHELO(s.helo))
	}
	if s.cfg.auth != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(s.cfg.auth),
			gomail.WithUsername(s.cfg.user),
			gomail.WithPassword(s.cfg.pass),
		)
	}
	return opts
}

// build turns m into a MIME message: multipart/mixed (regular attachments)
// around multipart/related (inline attachments) around
// multipart/alternative (text, then HTML); levels that would hold a single
// part are left out.
func (s *SMTPSender) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, latchkey.Errorf(latchkey.Invalid, "mail recipient %q is invalid", m.To)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if m.Key != "" {
		msg.SetMessageIDWithValue(messageID(m.Key, s.domain()))
	} else {
		msg.SetMessageIDWithValue(rand.Text() + "@" + s.domain())
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	}
	for _, a := range m.Attachments {
		var opts []gomail.FileOption
		if a.ContentType != "" {
			opts = append(opts, gomail.WithFileContentType(gomail.ContentType(a.ContentType)))
		}
		r := bytes.NewReader(a.Data)
		if a.Inline {
			if a.ContentID != "" {
				opts = append(opts, gomail.WithFileContentID("<"+a.ContentID+">"))
			}
			msg.EmbedReadSeeker(a.Filename, r, opts...)
			continue
		}
		msg.AttachReadSeeker(a.Filename, r, opts...)
	}
	return msg, nil
}

func (s *SMTPSender) domain() string {
	if i := strings.LastIndexByte(s.from.Address, '@'); i >= 0 {
		return s.from.Address[i+1:]
	}
	return "latchkey.invalid"
}

// messageID returns the Message-ID (without angle brackets) used for a
// message with the given non-empty key sent from domain. It depends only on
// its arguments, so every resend of a message carries the same Message-ID.
func messageID(key, domain string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16]) + "@" + domain
}

// classify maps a go-mail error to a latchkey kind: 5xx replies are
// permanent (Invalid), everything else — 4xx replies, refused connections,
// timeouts, TLS and protocol failures — is treated as transient
// (Unavailable) so the caller retries within its budget.
func (s *SMTPSender) classify(err error) error {
	code := replyCode(err)
	var se *gomail.SendError
	badAddr := errors.As(err, &se) && (se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts)
	err = s.scrub(err)
	switch {
	case code == 535 || code == 534 || code == 530:
		return latchkey.Wrap(latchkey.Invalid,
			fmt.Sprintf("smtp server %s refused the credentials (%d)", s.hostPort, code), err)
	case code >= 500:
		return latchkey.Wrap(latchkey.Invalid,
			fmt.Sprintf("smtp server %s rejected the message (%d)", s.hostPort, code), err)
	case code >= 400:
		return latchkey.Wrap(latchkey.Unavailable,
			fmt.Sprintf("smtp server %s deferred the message (%d)", s.hostPort, code), err)
	case badAddr:
		return latchkey.Wrap(latchkey.Invalid, "mail addresses are invalid", err)
	default:
		return latchkey.Wrap(latchkey.Unavailable,
			fmt.Sprintf("smtp server %s unavailable", s.hostPort), err)
	}
}

// replyCode returns the SMTP reply code carried by err, or 0.
func replyCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) {
		if c := se.ErrorCode(); c != 0 {
			return c
		}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// scrub removes the password from err's text. go-mail does not put it in
// errors, but an error that reaches a log must never carry it, so this does
// not rely on that.
func (s *SMTPSender) scrub(err error) error {
	if err == nil || s.cfg.pass == "" || !strings.Contains(err.Error(), s.cfg.pass) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), s.cfg.pass, "xxxxx"))
}
