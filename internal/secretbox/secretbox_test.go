package secretbox

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	b, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed := b.Seal([]byte("link-secret"), []byte("visit_link:1"))
	if bytes.Contains(sealed, []byte("link-secret")) {
		t.Fatal("sealed value contains the plain text")
	}
	got, err := b.Open(sealed, []byte("visit_link:1"))
	if err != nil || string(got) != "link-secret" {
		t.Fatalf("Open = %q, %v; want link-secret", got, err)
	}
	if _, err := b.Open(sealed, []byte("visit_link:2")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with other ad: got %v, want ErrOpen", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed, []byte("visit_link:1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with other key: got %v, want ErrOpen", err)
	}
	if _, err := b.Open([]byte("short"), nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open of garbage: got %v, want ErrOpen", err)
	}
}

func TestToken(t *testing.T) {
	b, _ := New(bytes.Repeat([]byte{1}, 32))
	c, _ := New(bytes.Repeat([]byte{2}, 32))
	t1, t2 := b.Token("salt-a"), b.Token("salt-a")
	if t1 != t2 {
		t.Fatalf("same salt gave %q and %q", t1, t2)
	}
	if len(t1) != 43 {
		t.Fatalf("token length %d, want 43 (256 bits base64url)", len(t1))
	}
	if b.Token("salt-b") == t1 || c.Token("salt-a") == t1 {
		t.Fatal("token does not depend on salt and key")
	}
	if Hash(t1) == t1 || len(Hash(t1)) != 64 {
		t.Fatalf("Hash(%q) = %q", t1, Hash(t1))
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("New accepted a short key")
	}
}
