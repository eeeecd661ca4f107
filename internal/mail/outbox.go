package mail

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/latchkey/latchkey"
)

// ErrNotFound is returned (wrapped) by Outbox.Get for an unknown id.
var ErrNotFound = &latchkey.Error{Kind: latchkey.NotFound, Msg: "message not found"}

// List paging bounds.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// StoredMessage is a message captured by an Outbox.
type StoredMessage struct {
	ID int64
	Message
	// SentAt is when the message was stored, in UTC.
	SentAt time.Time
}

// OutboxFilter selects messages for Outbox.List.
type OutboxFilter struct {
	// To, when set, keeps only messages to exactly this address.
	To string
	// Limit is the page size: DefaultListLimit when zero or negative, at
	// most MaxListLimit.
	Limit int
	// Offset skips that many messages of the newest-first order.
	Offset int
}

// Outbox is a Sender that stores messages in the outbox_messages table
// instead of delivering them. It is the embedded default when no SMTP server
// is configured. It is safe for concurrent use.
type Outbox struct {
	db     *gorm.DB
	now    func() time.Time
	sealer Sealer
}

// Sealer encrypts stored bodies; internal/secretbox's Box is one.
type Sealer interface {
	Seal(plain, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// WithSealer makes o seal the bodies and attachments it stores (they hold
// pass URLs and link secrets) and open them when read. Messages stored
// before, in the clear, still read. It returns o.
func (o *Outbox) WithSealer(s Sealer) *Outbox {
	o.sealer = s
	return o
}

// sealedPrefix marks a sealed column value: the prefix, then the sealed
// bytes in base64.
const sealedPrefix = "sealed:v1:"

// sealAD binds a sealed value to its column and recipient, so it cannot be
// moved to another column or message to another person.
func sealAD(column, to string) []byte { return []byte("outbox_messages." + column + "\x00" + to) }

func (o *Outbox) seal(column, to, v string) string {
	if o.sealer == nil || v == "" {
		return v
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(o.sealer.Seal([]byte(v), sealAD(column, to)))
}

// errSealed is returned for a sealed message read without the key.
var errSealed = errors.New("message is sealed and this outbox has no key")

func (o *Outbox) open(column, to, v string) (string, error) {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		return v, nil
	}
	if o.sealer == nil {
		return "", errSealed
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("decode sealed %s: %w", column, err)
	}
	plain, err := o.sealer.Open(b, sealAD(column, to))
	if err != nil {
		return "", fmt.Errorf("open sealed %s: %w", column, err)
	}
	return string(plain), nil
}

var _ Sender = (*Outbox)(nil)

// DedupesByKey reports that the outbox stores a message at most once per
// Message.Key, whoever sends it and however often.
func (o *Outbox) DedupesByKey() bool { return true }

// NewOutbox returns an Outbox on db. db must be opened with
// gorm.Config{TranslateError: true} (as internal/database.Open does) so that
// duplicate keys are recognised, and migrated with Migrate.
func NewOutbox(db *gorm.DB) *Outbox {
	return &Outbox{db: db, now: time.Now}
}

// outboxRow is the table shape: Key is NULL when empty so the unique index
// only constrains keyed messages, and attachments are one JSON document.
type outboxRow struct {
	ID          int64     `gorm:"column:id;primaryKey;autoIncrement"`
	Key         *string   `gorm:"column:key;size:255;uniqueIndex:idx_outbox_messages_key"`
	To          string    `gorm:"column:to;size:320;not null;index:idx_outbox_messages_to"`
	Subject     string    `gorm:"column:subject;type:text;not null"`
	Text        string    `gorm:"column:text;type:text;not null"`
	HTML        string    `gorm:"column:html;type:text;not null"`
	Attachments string    `gorm:"column:attachments;type:text;not null"`
	SentAt      time.Time `gorm:"column:sent_at;not null;index:idx_outbox_messages_sent_at"`
}

func (outboxRow) TableName() string { return "outbox_messages" }

// attachmentJSON is the stored form of an Attachment; its field names are
// part of the table format.
type attachmentJSON struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	Data        []byte `json:"data"`
	Inline      bool   `json:"inline,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
}

// Migrate creates or extends the outbox_messages table. It only adds.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&outboxRow{}); err != nil {
		return fmt.Errorf("migrate outbox_messages: %w", err)
	}
	return nil
}

// Send stores m with the current time. A message whose non-empty Key was
// already stored is not stored again, and Send returns nil, so retries are
// harmless. It returns a latchkey.Invalid error when m is malformed.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := validate(m); err != nil {
		return err
	}
	row, err := toRow(m, o.now())
	if err != nil {
		return err
	}
	row.Text = o.seal("text", row.To, row.Text)
	row.HTML = o.seal("html", row.To, row.HTML)
	row.Attachments = o.seal("attachments", row.To, row.Attachments)
	// A duplicate key is the expected outcome of a retry, not a failure, so
	// this statement does not go to the gorm logger; real errors are
	// returned to the caller, which handles them once.
	quiet := o.db.Session(&gorm.Session{Logger: o.db.Logger.LogMode(logger.Silent)})
	err = quiet.WithContext(ctx).Omit(clause.Associations).Create(&row).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store mail to %s: %w", m.To, err)
	}
	return nil
}

// List returns one page of stored messages, newest first, and the number of
// messages that match f regardless of paging.
func (o *Outbox) List(ctx context.Context, f OutboxFilter) ([]StoredMessage, int64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	offset := max(f.Offset, 0)

	q := o.db.WithContext(ctx).Model(&outboxRow{})
	if f.To != "" {
		q = q.Where(clause.Eq{Column: clause.Column{Name: "to"}, Value: f.To})
	}
	var total int64
	if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count outbox messages: %w", err)
	}
	var rows []outboxRow
	err := q.Order("sent_at DESC").Order("id DESC").Limit(limit).Offset(offset).Find(&rows).Error
	if err != nil {
		return nil, 0, fmt.Errorf("list outbox messages: %w", err)
	}
	out := make([]StoredMessage, 0, len(rows))
	for _, r := range rows {
		sm, err := o.toDomain(r)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sm)
	}
	return out, total, nil
}

// Get returns the stored message with id, or an error wrapping ErrNotFound.
func (o *Outbox) Get(ctx context.Context, id int64) (StoredMessage, error) {
	var r outboxRow
	err := o.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return StoredMessage{}, fmt.Errorf("get outbox message %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return StoredMessage{}, fmt.Errorf("get outbox message %d: %w", id, err)
	}
	return o.toDomain(r)
}

// toDomain opens a row's sealed columns and decodes it.
func (o *Outbox) toDomain(r outboxRow) (StoredMessage, error) {
	var err error
	for _, c := range []struct {
		name string
		v    *string
	}{{"text", &r.Text}, {"html", &r.HTML}, {"attachments", &r.Attachments}} {
		if *c.v, err = o.open(c.name, r.To, *c.v); err != nil {
			return StoredMessage{}, fmt.Errorf("outbox message %d: %w", r.ID, err)
		}
	}
	return r.toDomain()
}

func toRow(m Message, now time.Time) (outboxRow, error) {
	r := outboxRow{
		To:      m.To,
		Subject: m.Subject,
		Text:    m.Text,
		HTML:    m.HTML,
		// PostgreSQL keeps microseconds; truncate so a stored message reads
		// back equal on every database.
		SentAt: now.UTC().Truncate(time.Microsecond),
	}
	if m.Key != "" {
		k := m.Key
		r.Key = &k
	}
	if len(m.Attachments) > 0 {
		as := make([]attachmentJSON, len(m.Attachments))
		for i, a := range m.Attachments {
			as[i] = attachmentJSON(a)
		}
		b, err := json.Marshal(as)
		if err != nil {
			return r, fmt.Errorf("encode attachments: %w", err)
		}
		r.Attachments = string(b)
	}
	return r, nil
}

func (r outboxRow) toDomain() (StoredMessage, error) {
	sm := StoredMessage{
		ID: r.ID,
		Message: Message{
			To:      r.To,
			Subject: r.Subject,
			Text:    r.Text,
			HTML:    r.HTML,
		},
		SentAt: r.SentAt.UTC(),
	}
	if r.Key != nil {
		sm.Key = *r.Key
	}
	if r.Attachments != "" {
		var as []attachmentJSON
		if err := json.Unmarshal([]byte(r.Attachments), &as); err != nil {
			return sm, fmt.Errorf("decode attachments of outbox message %d: %w", r.ID, err)
		}
		sm.Attachments = make([]Attachment, len(as))
		for i, a := range as {
			sm.Attachments[i] = Attachment(a)
		}
	}
	return sm, nil
}
