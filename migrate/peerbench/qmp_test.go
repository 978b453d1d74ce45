package peerbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const testGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}`

// fakeQMP plays a QMP server on one end of a socket pair: it sends the
// greeting, answers qmp_capabilities, then hands each command to handle,
// which writes whatever lines it likes back.
type fakeQMP struct {
	mu   sync.Mutex // send is called from the test and the fake's goroutine
	conn net.Conn
	w    *bufio.Writer
	got  chan map[string]any
}

func (f *fakeQMP) send(t *testing.T, line string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.WriteString(line + "\r\n"); err != nil {
		t.Errorf("fake QMP: %v", err)
	}
	if err := f.w.Flush(); err != nil {
		t.Errorf("fake QMP: %v", err)
	}
}

func startFake(t *testing.T, handle func(f *fakeQMP, cmd map[string]any)) (*Client, *fakeQMP) {
	t.Helper()
	cc, sc := net.Pipe()
	f := &fakeQMP{conn: sc, w: bufio.NewWriter(sc), got: make(chan map[string]any, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.send(t, testGreeting)
		sc2 := bufio.NewScanner(sc)
		for sc2.Scan() {
			var cmd map[string]any
			if err := json.Unmarshal(sc2.Bytes(), &cmd); err != nil {
				t.Errorf("fake QMP: client sent %q: %v", sc2.Text(), err)
				return
			}
			if cmd["execute"] == "qmp_capabilities" {
				f.send(t, fmt.Sprintf(`{"return": {}, "id": %q}`, cmd["id"]))
				continue
			}
			f.got <- cmd
			handle(f, cmd)
		}
	}()
	t.Cleanup(func() { sc.Close(); <-done })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := NewClient(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, f
}

func TestClientExecute(t *testing.T) {
	c, f := startFake(t, func(f *fakeQMP, cmd map[string]any) {
		id := cmd["id"]
		switch cmd["execute"] {
		case "query-status":
			// An event may come between a command and its reply.
			f.send(t, `{"timestamp": {"seconds": 1700000000, "microseconds": 250}, "event": "STOP"}`)
			f.send(t, fmt.Sprintf(`{"return": {"status": "paused", "running": false}, "id": %q}`, id))
		case "migrate-set-parameters":
			args, _ := cmd["arguments"].(map[string]any)
			if args["downtime-limit"] != float64(30) {
				f.send(t, fmt.Sprintf(`{"error": {"class": "GenericError", "desc": "want 30, got %v"}, "id": %q}`, args["downtime-limit"], id))
				return
			}
			f.send(t, fmt.Sprintf(`{"return": {}, "id": %q}`, id))
		default:
			f.send(t, fmt.Sprintf(`{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}, "id": %q}`, cmd["execute"], id))
		}
	})
	ctx := context.Background()
	if !strings.Contains(string(c.Greeting()), `"major": 7`) {
		t.Errorf("greeting %s", c.Greeting())
	}

	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "paused" || st.Running {
		t.Errorf("query-status = %+v", st)
	}
	ev := c.Events()
	if len(ev) != 1 || ev[0].Name != "STOP" || !ev[0].Time.Equal(time.Unix(1700000000, 250_000)) {
		t.Errorf("events = %+v", ev)
	}

	if err := c.Execute(ctx, "migrate-set-parameters", map[string]any{"downtime-limit": 30}, nil); err != nil {
		t.Errorf("migrate-set-parameters: %v", err)
	}
	if got := <-f.got; got["execute"] != "query-status" || got["arguments"] != nil {
		t.Errorf("first command sent as %v (no arguments wanted)", got)
	}
	<-f.got

	err := c.Execute(ctx, "no-such-command", nil, nil)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Class != "CommandNotFound" || !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("unknown command: %v", err)
	}
}

func TestClientWaitEvent(t *testing.T) {
	c, f := startFake(t, func(*fakeQMP, map[string]any) {})
	f.send(t, `{"timestamp": {"seconds": 10, "microseconds": 1}, "event": "MIGRATION", "data": {"status": "setup"}}`)
	f.send(t, `{"timestamp": {"seconds": 10, "microseconds": 2}, "event": "MIGRATION_PASS", "data": {"pass": 1}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// An event that already arrived is found...
	e, i, err := c.WaitEvent(ctx, 0, func(e Event) bool { return e.Name == "MIGRATION_PASS" })
	if err != nil || i != 1 || string(e.Data) != `{"pass": 1}` {
		t.Fatalf("WaitEvent = %+v, %d, %v", e, i, err)
	}
	// ...and one that has not is waited for, starting after a mark.
	go f.send(t, `{"timestamp": {"seconds": 11, "microseconds": 999999}, "event": "MIGRATION", "data": {"status": "completed"}}`)
	e, i, err = c.WaitEvent(ctx, 2, func(e Event) bool { return e.Name == "MIGRATION" })
	if err != nil || i != 2 || migrationStatus(e) != "completed" || e.Time.Sub(time.Unix(10, 1000)) != time.Second+999998*time.Microsecond {
		t.Fatalf("WaitEvent = %+v, %d, %v", e, i, err)
	}

	// A cancelled wait returns the context's error.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, _, err := c.WaitEvent(short, 0, func(Event) bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitEvent past its deadline: %v", err)
	}
}

func TestClientLateReplyIsDropped(t *testing.T) {
	var slowID any
	c, _ := startFake(t, func(f *fakeQMP, cmd map[string]any) {
		if cmd["execute"] == "slow" {
			slowID = cmd["id"] // answered only after the caller gave up
			return
		}
		f.send(t, fmt.Sprintf(`{"return": {"late": true}, "id": %q}`, slowID))
		f.send(t, fmt.Sprintf(`{"return": {"n": 2}, "id": %q}`, cmd["id"]))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := c.Execute(ctx, "slow", nil, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow command: %v", err)
	}
	// The late reply must neither reach the next command nor break the
	// connection.
	var out struct{ N int }
	if err := c.Execute(context.Background(), "fast", nil, &out); err != nil || out.N != 2 {
		t.Fatalf("next command = %+v, %v", out, err)
	}
}

func TestClientConnectionLoss(t *testing.T) {
	c, _ := startFake(t, func(f *fakeQMP, cmd map[string]any) { f.conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Execute(ctx, "quit", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("command on a closing connection: %v", err)
	}
	if _, _, err := c.WaitEvent(ctx, 0, func(Event) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitEvent after the connection ended: %v", err)
	}
	if err := c.Execute(ctx, "query-status", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("command after the connection ended: %v", err)
	}
}

func TestClientMalformedLineEndsConnection(t *testing.T) {
	c, f := startFake(t, func(*fakeQMP, map[string]any) {})
	f.send(t, `{"event": "STOP"}`) // no timestamp
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.WaitEvent(ctx, 0, func(Event) bool { return true })
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrMalformed) {
		t.Errorf("after a malformed event: %v", err)
	}
}

func TestNewClientRejects(t *testing.T) {
	tests := []struct {
		name  string
		first string
		want  error
	}{
		{"a reply before the greeting", `{"return": {}}`, ErrMalformed},
		{"not JSON", `QEMU 7.2 monitor - type 'help'`, ErrMalformed},
		{"greeting that is not an object", `{"QMP": 7}`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := net.Pipe()
			defer sc.Close()
			go fmt.Fprintf(sc, "%s\n", tt.first)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := NewClient(ctx, cc); !errors.Is(err, tt.want) {
				t.Errorf("NewClient = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("silent server", func(t *testing.T) {
		cc, sc := net.Pipe()
		defer sc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := NewClient(ctx, cc); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("NewClient = %v, want the context's deadline", err)
		}
	})
}

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		line    string
		kind    MessageKind
		wantErr bool
	}{
		{testGreeting, KindGreeting, false},
		{`{"return": {}, "id": "1"}`, KindReturn, false},
		{`{"return": [{"name": "a"}]}`, KindReturn, false},
		{`{"error": {"class": "GenericError", "desc": "x"}, "id": "2"}`, KindError, false},
		{`{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "RESUME"}`, KindEvent, false},
		{`{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "STOP", "data": null}`, KindEvent, false},
		{`{"return": {}, "event": "STOP"}`, 0, true},
		{`{}`, 0, true},
		{`[]`, 0, true},
		{``, 0, true},
		{`{"error": {"desc": "no class"}}`, 0, true},
		{`{"error": "text"}`, 0, true},
		{`{"event": "", "timestamp": {"seconds": 1, "microseconds": 0}}`, 0, true},
		{`{"event": 3, "timestamp": {"seconds": 1, "microseconds": 0}}`, 0, true},
		{`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 1000000}}`, 0, true},
		{`{"event": "STOP", "timestamp": {"seconds": -1, "microseconds": 0}}`, 0, true},
		{`{"event": "STOP", "timestamp": {"seconds": 1}}`, 0, true},
		{`{"event": "STOP", "timestamp": {"seconds": 1.5, "microseconds": 0}}`, 0, true},
		{`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}, "data": [1]}`, 0, true},
		{`{"return": {}`, 0, true},
	}
	for _, tt := range tests {
		m, err := DecodeMessage([]byte(tt.line))
		if (err != nil) != tt.wantErr {
			t.Errorf("DecodeMessage(%s) error = %v, want error %v", tt.line, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeMessage(%s) = %v, not ErrMalformed", tt.line, err)
			}
			continue
		}
		if m.Kind != tt.kind {
			t.Errorf("DecodeMessage(%s).Kind = %v, want %v", tt.line, m.Kind, tt.kind)
		}
	}
}
