package web

import "testing"

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
