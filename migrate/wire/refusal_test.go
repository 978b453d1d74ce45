package wire_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
)

// A refused upgrade's error carries the server's reason, whether the body
// is plain text or an instance server's indented JSON ErrorResponse,
// whose first line is only "{".
func TestDialRefusalReason(t *testing.T) {
	tests := []struct {
		name, contentType, body, want string
	}{
		{"plain text", "text/plain", "a migration is already in progress\nmore\n", "a migration is already in progress"},
		{"indented JSON error", "application/json", "{\n  \"error\": \"no VM to migrate: instance is waiting\"\n}\n", "no VM to migrate: instance is waiting"},
		{"JSON without an error field", "application/json", "{\n  \"other\": 1\n}\n", "{"},
		{"empty", "text/plain", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(http.StatusConflict)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer hs.Close()
			_, err := wire.Dial(t.Context(), strings.TrimPrefix(hs.URL, "http://"), nil, "/stream")
			var ue *wire.UpgradeError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want an UpgradeError", err)
			}
			if ue.Status != "409 Conflict" || ue.Body != tc.want {
				t.Errorf("status %q reason %q, want 409 Conflict and %q", ue.Status, ue.Body, tc.want)
			}
		})
	}
}
