package mail

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/internal/testenv"
)

// newTestOutbox returns an Outbox on a fresh, migrated database whose clock
// advances one second per message, starting at base.
func newTestOutbox(tb testing.TB) (*Outbox, time.Time) {
	tb.Helper()
	db := testenv.DB(tb)
	if err := Migrate(context.Background(), db); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	base := time.Date(2026, 1, 5, 9, 0, 0, 123456000, time.UTC)
	var mu sync.Mutex
	tick := 0
	o := NewOutbox(db)
	o.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := base.Add(time.Duration(tick) * time.Second)
		tick++
		return t
	}
	return o, base
}

func TestOutboxSendGet(t *testing.T) {
	o, base := newTestOutbox(t)
	ctx := context.Background()
	m := Message{
		To:      "ada@example.com",
		Subject: "Your access",
		Text:    "text",
		HTML:    `<img src="cid:qr@latchkey">`,
		Key:     "visit-1:invite",
		Attachments: []Attachment{
			{Filename: "qr.png", ContentType: "image/png", Data: []byte{0x89, 'P', 'N', 'G', 0}, Inline: true, ContentID: "qr@latchkey"},
			{Filename: "invite.ics", ContentType: "text/calendar; method=REQUEST", Data: []byte(testICS)},
		},
	}
	if err := o.Send(ctx, m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	list, total, err := o.List(ctx, OutboxFilter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if total != 1 || len(list) != 1 {
		t.Fatalf("List = %d messages, total %d; want 1, 1", len(list), total)
	}
	got, err := o.Get(ctx, list[0].ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := StoredMessage{ID: list[0].ID, Message: m, SentAt: base}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, list[0]); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
	if got.SentAt.Location() != time.UTC {
		t.Errorf("SentAt location = %v, want UTC", got.SentAt.Location())
	}
}

func TestOutboxGetNotFound(t *testing.T) {
	o, _ := newTestOutbox(t)
	_, err := o.Get(context.Background(), 404)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	if k := latchkey.KindOf(err); k != latchkey.NotFound {
		t.Errorf("KindOf = %v, want not_found", k)
	}
}

func TestOutboxSendIdempotentByKey(t *testing.T) {
	o, _ := newTestOutbox(t)
	ctx := context.Background()
	first := Message{To: "ada@example.com", Subject: "first", Text: "x", Key: "visit-1:invite"}
	second := first
	second.Subject = "second"
	for _, m := range []Message{first, second, first} {
		if err := o.Send(ctx, m); err != nil {
			t.Fatalf("Send(%q): %v", m.Subject, err)
		}
	}
	// Messages without a key are never de-duplicated.
	unkeyed := Message{To: "ada@example.com", Subject: "unkeyed", Text: "x"}
	for range 2 {
		if err := o.Send(ctx, unkeyed); err != nil {
			t.Fatalf("Send(unkeyed): %v", err)
		}
	}
	list, total, err := o.List(ctx, OutboxFilter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var subjects []string
	for _, sm := range list {
		subjects = append(subjects, sm.Subject)
	}
	if d := cmp.Diff([]string{"unkeyed", "unkeyed", "first"}, subjects); d != "" {
		t.Errorf("subjects (-want +got):\n%s", d)
	}
	if total != 3 {
		t.Errorf("total = %d, want 3", total)
	}
}

func TestOutboxSendConcurrentSameKey(t *testing.T) {
	o, _ := newTestOutbox(t)
	ctx := context.Background()
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs <- o.Send(ctx, Message{To: "ada@example.com", Subject: fmt.Sprint(i), Text: "x", Key: "same"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	_, total, err := o.List(ctx, OutboxFilter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if total != 1 {
		t.Errorf("total = %d, want 1", total)
	}
}

func TestOutboxListPaging(t *testing.T) {
	o, _ := newTestOutbox(t)
	ctx := context.Background()
	// Sent in order 0..6; ada gets the even ones.
	for i := range 7 {
		to := "bob@example.com"
		if i%2 == 0 {
			to = "ada@example.com"
		}
		if err := o.Send(ctx, Message{To: to, Subject: fmt.Sprint(i), Text: "x", Key: fmt.Sprintf("k%d", i)}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	tests := []struct {
		name      string
		filter    OutboxFilter
		want      []string
		wantTotal int64
	}{
		{name: "all", filter: OutboxFilter{}, want: []string{"6", "5", "4", "3", "2", "1", "0"}, wantTotal: 7},
		{name: "first page", filter: OutboxFilter{Limit: 3}, want: []string{"6", "5", "4"}, wantTotal: 7},
		{name: "second page", filter: OutboxFilter{Limit: 3, Offset: 3}, want: []string{"3", "2", "1"}, wantTotal: 7},
		{name: "last page", filter: OutboxFilter{Limit: 3, Offset: 6}, want: []string{"0"}, wantTotal: 7},
		{name: "past the end", filter: OutboxFilter{Limit: 3, Offset: 9}, want: nil, wantTotal: 7},
		{name: "by recipient", filter: OutboxFilter{To: "ada@example.com"}, want: []string{"6", "4", "2", "0"}, wantTotal: 4},
		{name: "by recipient paged", filter: OutboxFilter{To: "ada@example.com", Limit: 2, Offset: 1}, want: []string{"4", "2"}, wantTotal: 4},
		{name: "unknown recipient", filter: OutboxFilter{To: "eve@example.com"}, want: nil, wantTotal: 0},
		{name: "negative offset", filter: OutboxFilter{Limit: 1, Offset: -5}, want: []string{"6"}, wantTotal: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, total, err := o.List(ctx, tt.filter)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for i, sm := range list {
				got = append(got, sm.Subject)
				if i > 0 && sm.SentAt.After(list[i-1].SentAt) {
					t.Errorf("message %d sent at %v after message %d at %v; want newest first", i, sm.SentAt, i-1, list[i-1].SentAt)
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("subjects (-want +got):\n%s", d)
			}
			if total != tt.wantTotal {
				t.Errorf("total = %d, want %d", total, tt.wantTotal)
			}
		})
	}
}

func TestOutboxListSameInstant(t *testing.T) {
	// Messages stored within the same clock reading still list newest first.
	db := testenv.DB(t)
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	o := NewOutbox(db)
	fixed := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return fixed }
	ctx := context.Background()
	for i := range 3 {
		if err := o.Send(ctx, Message{To: "ada@example.com", Subject: fmt.Sprint(i), Text: "x"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	list, _, err := o.List(ctx, OutboxFilter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, sm := range list {
		got = append(got, sm.Subject)
	}
	if d := cmp.Diff([]string{"2", "1", "0"}, got); d != "" {
		t.Errorf("subjects (-want +got):\n%s", d)
	}
}

func TestOutboxSendInvalid(t *testing.T) {
	o, _ := newTestOutbox(t)
	ctx := context.Background()
	for _, m := range []Message{
		{Text: "no recipient"},
		{To: "not an address", Text: "x"},
		{To: "ada@example.com"},
	} {
		if err := o.Send(ctx, m); latchkey.KindOf(err) != latchkey.Invalid {
			t.Errorf("Send(%+v) = %v, want an invalid error", m, err)
		}
	}
	_, total, err := o.List(ctx, OutboxFilter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if total != 0 {
		t.Errorf("total = %d, want 0", total)
	}
}

func TestMigrateTwice(t *testing.T) {
	db := testenv.DB(t)
	for i := range 2 {
		if err := Migrate(context.Background(), db); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
}

// TestSealedOutboxStoresNoPassURL: with a sealer, the stored text, HTML and
// attachments of a message hold none of its secrets (pass URL, token), and
// the outbox reads them back unchanged; rows stored before sealing still
// read.
func TestSealedOutboxStoresNoPassURL(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const token = "pAsStOkEn0123456789abcdefghijklmnopqrstuvwx"
	passURL := "http://latchkey.test/v/" + token
	plain := NewOutbox(db)
	if err := plain.Send(ctx, Message{To: "old@example.com", Subject: "old", Text: "stored before sealing"}); err != nil {
		t.Fatal(err)
	}
	o := NewOutbox(db).WithSealer(box)
	m := Message{To: "ada@example.com", Subject: "Your access", Key: "visit-1:access",
		Text: "Open " + passURL, HTML: `<a href="` + passURL + `">open</a>`,
		Attachments: []Attachment{{Filename: "qr.txt", ContentType: "text/plain", Data: []byte(passURL)}}}
	if err := o.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	if err := db.Raw("SELECT * FROM outbox_messages").Scan(&raw).Error; err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 {
		t.Fatalf("%d rows, want 2", len(raw))
	}
	for _, row := range raw {
		for col, v := range row {
			s := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				s = string(b)
			}
			if strings.Contains(s, token) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(passURL))[:20]) {
				t.Errorf("column %s holds the pass token: %.80q", col, s)
			}
		}
	}
	list, _, err := o.List(ctx, OutboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %d messages, want 2", len(list))
	}
	got := list[0].Message
	if d := cmp.Diff(m, got); d != "" {
		t.Errorf("sealed message read back (-sent +got):\n%s", d)
	}
	if list[1].Text != "stored before sealing" {
		t.Errorf("plain row read back as %q", list[1].Text)
	}
	if sm, err := o.Get(ctx, list[0].ID); err != nil || sm.Text != m.Text {
		t.Errorf("Get: %q, %v; want the opened text", sm.Text, err)
	}
	// Without the key, a sealed message is an error, never ciphertext
	// passed off as the body.
	if _, err := plain.Get(ctx, list[0].ID); err == nil {
		t.Error("an outbox without the key read a sealed message")
	}
}
