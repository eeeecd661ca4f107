package web

import (
	"testing"
	"time"
)

func TestKindLabel(t *testing.T) {
	tests := []struct{ kind, want string }{
		{"email_sent", "Email sent"},
		{"email_failed", "Email failed"},
		{"link_created", "Access created"},
		{"event", "Envoy event"},
		{"unlock", "Door opened"},
		{"action", "Front desk"},
		{"sync_retry", "Sync retry"},
		{"", "Note"},
	}
	for _, tt := range tests {
		if got := kindLabel(tt.kind); got != tt.want {
			t.Errorf("kindLabel(%q) = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

// TestEventRowDoor: the Door column names a door only for door events;
// a link's event names the link (the visitor) beside its type.
func TestEventRowDoor(t *testing.T) {
	u := &UI{zone: time.UTC}
	name := "Jane Visitor (Visitor)"
	link := u.eventRow(ctrlEvent{Type: "group_link.create", ObjectType: "GroupLink", ObjectName: name, Success: true})
	if link.Door != "" || link.Subject != "group link "+name {
		t.Errorf("link event: door %q, subject %q", link.Door, link.Subject)
	}
	unlock := u.eventRow(ctrlEvent{Type: "lock.unlock", ObjectType: "Lock", ObjectName: "Front door", ActorName: &name, Success: true})
	if unlock.Door != "Front door" || unlock.Subject != "" || unlock.Actor != name {
		t.Errorf("unlock event: door %q, subject %q, actor %q", unlock.Door, unlock.Subject, unlock.Actor)
	}
}

func TestNameGroups(t *testing.T) {
	names := map[int64]string{1: "Visitors"}
	got := nameGroups("link 5 created on group 1: Wed 2 Dec; link 6 on group 2", names)
	if want := "link 5 created on group Visitors (1): Wed 2 Dec; link 6 on group 2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
