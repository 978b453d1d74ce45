package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A POST /v1/migrate body is one JSON object and nothing else: trailing
// data is refused with 400 naming where it starts, and starts nothing.
func TestMigrateBodyTrailingData(t *testing.T) {
	dst := start(t, false, nil, nil)
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"a second object", `{"source": "127.0.0.1:1"} {"source": "127.0.0.1:2"}`, 400, "data after the JSON object, which ends at byte 25"},
		{"garbage", `{"source": "127.0.0.1:1"}garbage`, 400, "data after the JSON object"},
		{"a stray brace", `{"source": "127.0.0.1:1"}}`, 400, "data after the JSON object"},
		{"a second value", `{"source": "127.0.0.1:1"} 1`, 400, "data after the JSON object"},
		// Last: it starts a migration (from nowhere, which fails).
		{"trailing whitespace is fine", "{\"source\": \"127.0.0.1:1\"}\n\t \n", 202, `"id"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post("http://"+dst.addr+MigratePath, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
				t.Errorf("%d %s, want %d containing %q", resp.StatusCode, body, tc.code, tc.want)
			}
			if tc.code == 400 {
				if st := dst.Status(); st.State != StateWaiting || st.Migration != nil {
					t.Errorf("a refused body started something: %s, %+v", st.State, st.Migration)
				}
			}
		})
	}
}
