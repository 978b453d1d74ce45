package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate"
)

// A destination asking a source's record for its memory digest takes only
// a well-formed one, and says what was wrong with any other; a record
// without one is "none yet", not an error.
func TestAskPeerDigest(t *testing.T) {
	id := migrate.NewID()
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		body   string
		wantOK bool
		errHas string
	}{
		{"a digest", `{"id":"` + id.String() + `","role":"source","state":"completed","memory_digest":"` + good + `","memory_pages":4096}`, true, ""},
		{"none yet", `{"id":"` + id.String() + `","role":"source","state":"committed"}`, false, ""},
		{"too long", `{"memory_digest":"` + good + `00","memory_pages":1}`, false, "66 characters, want 64 hex"},
		{"too short", `{"memory_digest":"abcd","memory_pages":1}`, false, "4 characters, want 64 hex"},
		{"not hex", `{"memory_digest":"` + strings.Repeat("zz", 32) + `","memory_pages":1}`, false, "is not 32 hex bytes"},
		{"not JSON", `{"memory_digest":`, false, "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != HandoffPath+id.String() {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			d, ok, err := (&Server{}).askPeerDigest(context.Background(), strings.TrimPrefix(ts.URL, "http://"), id)
			if ok != tc.wantOK || (tc.errHas == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("ok %v, err %v; want ok %v, error with %q", ok, err, tc.wantOK, tc.errHas)
			}
			if ok && (d.Pages != 4096 || d.Checksum[0] != 0xab || d.Checksum[31] != 0xab) {
				t.Errorf("digest %+v", d)
			}
		})
	}
}
