package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

// serveTCP serves s on a loopback port and returns its address.
func serveTCP(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// closedWithin reports whether the server closes conn within d (the
// client reads until EOF; a read deadline keeps the test bounded).
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestSlowHeaderSenderIsCut: a client that trickles its request headers
// (one byte every 50 ms, forever) is disconnected at ReadHeaderTimeout.
func TestSlowHeaderSenderIsCut(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{ReadHeaderTimeout: 300 * time.Millisecond})
	addr := serveTCP(t, s)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	if !closedWithin(t, conn, 3*time.Second) {
		t.Fatalf("a slow header sender still holds its connection after %v", time.Since(start))
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("connection closed after %v, before ReadHeaderTimeout", el)
	}
}

// TestIdleConnectionIsClosed: a keep-alive connection left idle is closed
// at IdleTimeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{IdleTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", serveTCP(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v, %v", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(t, conn, 3*time.Second) {
		t.Fatal("an idle keep-alive connection was not closed")
	}
}

// TestOversizedHeadersAreRefused: request headers past MaxHeaderBytes get
// 431.
func TestOversizedHeadersAreRefused(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{})
	conn, err := net.Dial("tcp", serveTCP(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 200<<10)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("200 KiB of headers: got %d, want 431", resp.StatusCode)
	}
}

// TestListenerTimeoutsAreSet: the defaults bound every phase of a
// connection, and the write timeout outlasts the request timeout, so a
// handler meets its own deadline before its answer is cut.
func TestListenerTimeoutsAreSet(t *testing.T) {
	hs := HTTPServer(http.NotFoundHandler(), Options{})
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 {
		t.Errorf("timeouts: header %v, read %v, write %v, idle %v; want all set", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout)
	}
	if hs.WriteTimeout <= 30*time.Second {
		t.Errorf("write timeout %v does not outlast the 30 s request timeout", hs.WriteTimeout)
	}
	if hs.MaxHeaderBytes <= 0 || hs.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes %d, want 1..64 KiB", hs.MaxHeaderBytes)
	}
}
