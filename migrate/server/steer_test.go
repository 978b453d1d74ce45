package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Refusals of the steering API: each says what was wrong with the
// status that fits, and a refused change changes nothing.
func TestSteeringRefusals(t *testing.T) {
	// A source capped at 64 KiB/s, whose guest dirties 4 MiB/s, with a
	// downtime target nothing but a clean guest meets and rounds enough,
	// keeps the migration in its pre-copy for the whole test.
	src := startWith(t, true, func(c *Config) {
		c.Migration.MaxBandwidth, c.Migration.DowntimeTarget, c.Migration.MaxRounds = 64<<10, time.Nanosecond, 1000
	})
	dst := start(t, false, nil, nil)
	// A second of dirtying fills about half the guest: the first round has
	// megabytes of data to move, not only zero pages.
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := dst.Start(MigrateRequest{Source: src.addr})
	if err != nil {
		t.Fatal(err)
	}
	for dst.Status().Migration.Phase != schema.PhaseRamPushPrePause.String() {
		if ctx.Err() != nil {
			t.Fatalf("the migration never reached its pre-copy: %+v", dst.Status().Migration)
		}
		time.Sleep(5 * time.Millisecond)
	}
	neg, zero, on := int64(-1), int64(0), true
	for _, tc := range []struct {
		name   string
		at     *testServer
		id     string
		req    SettingsRequest
		status int
		says   string
	}{
		{"negative bandwidth", dst, id.String(), SettingsRequest{Settings: migrate.Settings{MaxBandwidth: &neg}}, http.StatusBadRequest, "max_bandwidth -1"},
		{"zero rounds at the source", src, id.String(), SettingsRequest{Settings: migrate.Settings{MaxRounds: &zero}}, http.StatusBadRequest, "max_rounds 0"},
		{"a start-only setting", dst, id.String(), SettingsRequest{Settings: migrate.Settings{SkipMemoryChecksum: &on}}, http.StatusBadRequest, "skip_memory_checksum cannot change while the migration runs"},
		{"nothing", src, id.String(), SettingsRequest{}, http.StatusBadRequest, "no setting given"},
		{"unknown migration", dst, migrate.NewID().String(), SettingsRequest{Settings: migrate.Settings{MaxRounds: &neg}}, http.StatusNotFound, "unknown migration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.at.addr, nil, false).UpdateSettings(ctx, tc.id, tc.req)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || !strings.Contains(apiErr.Reason, tc.says) {
				t.Fatalf("%v; want %d saying %q", err, tc.status, tc.says)
			}
		})
	}
	for _, s := range []*testServer{src, dst} {
		if st := s.Status().Migration.Settings; st == nil || st.MaxBandwidth != 64<<10 || st.MaxRounds != 1000 {
			t.Errorf("%s's settings after the refusals: %+v, want the source's unchanged", s.Status().Migration.Role, st)
		}
	}
	// A body that is not JSON, and an unknown key, are refused too.
	defer http.DefaultClient.CloseIdleConnections()
	for _, body := range []string{"{", `{"max_bandwith": 5}`} {
		req, _ := http.NewRequest(http.MethodPatch, "http://"+dst.addr+HandoffPath+id.String()+"/settings", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PATCH %s: %s, want 400", body, resp.Status)
		}
	}
	// Cancelled, then ended: a second cancel and a change are refused as
	// not running.
	if _, err := NewClient(dst.addr, nil, false).Cancel(ctx, id.String(), CancelRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*testServer{src, dst} {
		for s.Status().Migration.Result == ResultRunning {
			time.Sleep(5 * time.Millisecond)
		}
	}
	_, err = NewClient(src.addr, nil, false).Cancel(ctx, id.String(), CancelRequest{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || !strings.Contains(apiErr.Reason, "it has ended") {
		t.Errorf("cancel after the end: %v, want 409 saying it has ended", err)
	}
	if st := src.Status(); st.State != StateRunning || st.Migration.Result != schema.ResultCancelled {
		t.Errorf("source after the cancel: %s, %s", st.State, st.Migration.Result)
	}
}
