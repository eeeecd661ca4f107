// Package mail sends email: through SMTP when SMTP_URL is set (SMTPSender),
// otherwise into an outbox table in the database (Outbox, the embedded
// default, listed by the admin UI and API). Both implement Sender. It owns
// the outbox_messages table and keeps go-mail and gorm behind its own types.
// It imports no domain package, only the root error vocabulary.
package mail

import (
	"context"
	netmail "net/mail"

	"github.com/latchkey/latchkey"
)

// Attachment is a file attached to a message; Inline ones are referenced from
// the HTML body as cid:<ContentID>.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
	Inline      bool
	ContentID   string
}

// Message is one email.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// Key identifies the message for idempotency: a Sender that already
	// delivered a message with this key does not deliver it again.
	Key         string
	Attachments []Attachment
}

// Sender delivers messages. Implementations are safe for concurrent use.
type Sender interface {
	// Send delivers m. It returns a latchkey.Invalid error when m is
	// malformed or refused for good, and a latchkey.Unavailable error when a
	// later attempt may succeed.
	Send(ctx context.Context, m Message) error
}

// validate reports a latchkey.Invalid error when m cannot be delivered by any
// Sender: the recipient must be one valid address, there must be a body, and
// every attachment needs a file name.
func validate(m Message) error {
	if m.To == "" {
		return latchkey.Errorf(latchkey.Invalid, "mail recipient is empty")
	}
	if _, err := netmail.ParseAddress(m.To); err != nil {
		return latchkey.Errorf(latchkey.Invalid, "mail recipient %q is invalid", m.To)
	}
	if m.Text == "" && m.HTML == "" {
		return latchkey.Errorf(latchkey.Invalid, "mail to %s has no body", m.To)
	}
	for i, a := range m.Attachments {
		if a.Filename == "" {
			return latchkey.Errorf(latchkey.Invalid, "mail attachment %d has no file name", i)
		}
	}
	return nil
}
