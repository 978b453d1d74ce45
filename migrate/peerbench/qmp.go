package peerbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// MaxMessageBytes bounds one QMP message (one line). QEMU's answers here
// are a few KiB; a longer line means the peer is not speaking QMP.
const MaxMessageBytes = 1 << 20

// Errors of the QMP client.
var (
	// ErrMalformed marks a line that is not a QMP message.
	ErrMalformed = errors.New("malformed QMP message")
	// ErrClosed is returned once the connection has ended.
	ErrClosed = errors.New("QMP connection closed")
)

// MessageKind says which of QMP's four server messages a line holds.
type MessageKind int

// The kinds of server message.
const (
	KindGreeting MessageKind = iota + 1
	KindReturn
	KindError
	KindEvent
)

func (k MessageKind) String() string {
	switch k {
	case KindGreeting:
		return "greeting"
	case KindReturn:
		return "return"
	case KindError:
		return "error"
	case KindEvent:
		return "event"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Message is one decoded server message.
type Message struct {
	Kind MessageKind
	// ID echoes the command's id (return and error); nil if it had none.
	ID json.RawMessage
	// Return is a command's result (return).
	Return json.RawMessage
	// Error is a command's failure (error).
	Error *CommandError
	// Event is the event's name, Data its payload and Time the host's
	// wall clock when QEMU emitted it, to the microsecond (event).
	Event string
	Data  json.RawMessage
	Time  time.Time
	// Greeting is the "QMP" object of the greeting (greeting).
	Greeting json.RawMessage
}

// CommandError is QMP's error reply to a command.
type CommandError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *CommandError) Error() string { return e.Class + ": " + e.Desc }

// wireMessage is the union of the server messages' members.
type wireMessage struct {
	QMP       json.RawMessage `json:"QMP"`
	Return    json.RawMessage `json:"return"`
	Error     json.RawMessage `json:"error"`
	Event     json.RawMessage `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp json.RawMessage `json:"timestamp"`
	ID        json.RawMessage `json:"id"`
}

// DecodeMessage decodes one QMP server message: a JSON object holding
// exactly one of "QMP", "return", "error" or "event". An event must carry
// a timestamp of whole seconds and microseconds below a million.
func DecodeMessage(line []byte) (Message, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return Message{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var w wireMessage
	if err := json.Unmarshal(line, &w); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	present := 0
	for _, m := range []json.RawMessage{w.QMP, w.Return, w.Error, w.Event} {
		if m != nil {
			present++
		}
	}
	if present != 1 {
		return Message{}, fmt.Errorf("%w: want exactly one of QMP, return, error and event, have %d", ErrMalformed, present)
	}
	var m Message
	if w.ID != nil {
		m.ID = w.ID
	}
	switch {
	case w.QMP != nil:
		if !isObject(w.QMP) {
			return Message{}, fmt.Errorf("%w: greeting's QMP member is not an object", ErrMalformed)
		}
		m.Kind, m.Greeting = KindGreeting, w.QMP
	case w.Return != nil:
		m.Kind, m.Return = KindReturn, w.Return
	case w.Error != nil:
		var e CommandError
		if err := json.Unmarshal(w.Error, &e); err != nil || !isObject(w.Error) {
			return Message{}, fmt.Errorf("%w: error member is not an object of class and desc", ErrMalformed)
		}
		if e.Class == "" {
			return Message{}, fmt.Errorf("%w: error without a class", ErrMalformed)
		}
		m.Kind, m.Error = KindError, &e
	case w.Event != nil:
		if err := json.Unmarshal(w.Event, &m.Event); err != nil || m.Event == "" {
			return Message{}, fmt.Errorf("%w: event name is not a non-empty string", ErrMalformed)
		}
		t, err := decodeTimestamp(w.Timestamp)
		if err != nil {
			return Message{}, fmt.Errorf("event %s: %w", m.Event, err)
		}
		if w.Data != nil && !isObject(w.Data) && !bytes.Equal(w.Data, []byte("null")) {
			return Message{}, fmt.Errorf("%w: event %s: data is not an object", ErrMalformed, m.Event)
		}
		m.Kind, m.Data, m.Time = KindEvent, w.Data, t
	}
	return m, nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// decodeTimestamp reads QMP's {"seconds": S, "microseconds": U}.
func decodeTimestamp(raw json.RawMessage) (time.Time, error) {
	if raw == nil {
		return time.Time{}, fmt.Errorf("%w: no timestamp", ErrMalformed)
	}
	var ts struct {
		Seconds      *int64 `json:"seconds"`
		Microseconds *int64 `json:"microseconds"`
	}
	if err := json.Unmarshal(raw, &ts); err != nil || !isObject(raw) {
		return time.Time{}, fmt.Errorf("%w: timestamp is not {seconds, microseconds}", ErrMalformed)
	}
	if ts.Seconds == nil || ts.Microseconds == nil {
		return time.Time{}, fmt.Errorf("%w: timestamp lacks seconds or microseconds", ErrMalformed)
	}
	// QEMU stamps events with the host's wall clock, never before 1970.
	if *ts.Seconds < 0 || *ts.Microseconds < 0 || *ts.Microseconds >= 1_000_000 {
		return time.Time{}, fmt.Errorf("%w: timestamp %d s %d µs out of range", ErrMalformed, *ts.Seconds, *ts.Microseconds)
	}
	if *ts.Seconds > (1<<63-1)/int64(time.Second)-1 {
		return time.Time{}, fmt.Errorf("%w: timestamp %d s out of range", ErrMalformed, *ts.Seconds)
	}
	return time.Unix(*ts.Seconds, *ts.Microseconds*1000), nil
}

// Event is one QMP event as the client received it.
type Event struct {
	Name string
	Data json.RawMessage
	// Time is QEMU's host timestamp of the event.
	Time time.Time
}

// Client is a QMP connection. Commands may be issued from several
// goroutines; events are kept, in order, for WaitEvent and Events.
type Client struct {
	conn     net.Conn
	greeting json.RawMessage

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan Message
	// abandoned holds the ids of commands whose callers gave up; their
	// late replies are dropped.
	abandoned map[string]bool
	events    []Event
	// eventsChanged is closed and replaced whenever an event arrives or
	// the connection ends.
	eventsChanged chan struct{}
	err           error // why the reader stopped
	done          chan struct{}
}

// Dial connects to a QMP server at addr ("unix" or "tcp" network), reads
// its greeting and leaves capabilities negotiation (qmp_capabilities)
// done, so commands can follow.
func Dial(ctx context.Context, network, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("dialling QMP at %s: %w", addr, err)
	}
	c, err := NewClient(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("QMP at %s: %w", addr, err)
	}
	return c, nil
}

// NewClient speaks QMP over conn, which it owns from now on: it reads the
// greeting and negotiates capabilities before returning.
func NewClient(ctx context.Context, conn net.Conn) (*Client, error) {
	c := &Client{
		conn:          conn,
		pending:       make(map[string]chan Message),
		abandoned:     make(map[string]bool),
		eventsChanged: make(chan struct{}),
		done:          make(chan struct{}),
	}
	// Until the reader runs, ctx bounds the greeting read.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	rd := bufio.NewReaderSize(conn, 64<<10)
	line, err := readLine(rd)
	if !stop() && err == nil {
		// The deadline may be set any moment now: treat it as set.
		err = ctx.Err()
	}
	if err == nil {
		err = conn.SetReadDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading the greeting: %w", ctx.Err())
		}
		return nil, fmt.Errorf("reading the greeting: %w", err)
	}
	m, err := DecodeMessage(line)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the greeting: %w", err)
	}
	if m.Kind != KindGreeting {
		conn.Close()
		return nil, fmt.Errorf("reading the greeting: %w: got a %s message first", ErrMalformed, m.Kind)
	}
	c.greeting = m.Greeting
	go c.read(rd)
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("negotiating capabilities: %w", err)
	}
	return c, nil
}

// Greeting returns the "QMP" member of the server's greeting.
func (c *Client) Greeting() json.RawMessage { return c.greeting }

// readLine reads one newline-terminated line of at most MaxMessageBytes.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxMessageBytes {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, MaxMessageBytes)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, fmt.Errorf("%w: connection ended inside a message", ErrMalformed)
		default:
			return nil, err
		}
	}
}

// read dispatches replies to their commands and keeps events, until the
// connection ends or a line fails to decode.
func (c *Client) read(rd *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = readLine(rd)
		if err != nil {
			break
		}
		var m Message
		m, err = DecodeMessage(line)
		if err != nil {
			break
		}
		switch m.Kind {
		case KindEvent:
			c.mu.Lock()
			c.events = append(c.events, Event{Name: m.Event, Data: m.Data, Time: m.Time})
			close(c.eventsChanged)
			c.eventsChanged = make(chan struct{})
			c.mu.Unlock()
		case KindReturn, KindError:
			// Commands are sent with string ids; QEMU echoes them back.
			var id string
			if json.Unmarshal(m.ID, &id) != nil {
				err = fmt.Errorf("%w: reply with id %s, want a string", ErrMalformed, m.ID)
				break
			}
			c.mu.Lock()
			ch, ok := c.pending[id]
			delete(c.pending, id)
			late := c.abandoned[id]
			delete(c.abandoned, id)
			c.mu.Unlock()
			if late {
				continue
			}
			if !ok {
				err = fmt.Errorf("%w: reply to unknown command id %s", ErrMalformed, m.ID)
			} else {
				ch <- m
			}
		case KindGreeting:
			err = fmt.Errorf("%w: a second greeting", ErrMalformed)
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.err = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	close(c.eventsChanged)
	c.mu.Unlock()
	close(c.done)
	c.conn.Close()
}

// Execute runs command with args (nil for none) and decodes its return
// value into out (nil to discard it). A QMP error reply is returned as a
// *CommandError.
func (c *Client) Execute(ctx context.Context, command string, args, out any) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", command, err)
	}
	c.nextID++
	id := strconv.FormatUint(c.nextID, 10)
	ch := make(chan Message, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	b, err := json.Marshal(req)
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: encoding arguments: %w", command, err)
	}
	b = append(b, '\n')
	c.writeMu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetWriteDeadline(dl)
	}
	_, err = c.conn.Write(b)
	_ = c.conn.SetWriteDeadline(time.Time{})
	c.writeMu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: sending: %w", command, err)
	}
	var m Message
	select {
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("%s: %w", command, ctx.Err())
	case msg, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return fmt.Errorf("%s: %w", command, err)
		}
		m = msg
	}
	if m.Kind == KindError {
		return fmt.Errorf("%s: %w", command, m.Error)
	}
	if out != nil {
		if err := json.Unmarshal(m.Return, out); err != nil {
			return fmt.Errorf("%s: decoding the return value: %w", command, err)
		}
	}
	return nil
}

// forget drops a command whose caller gives up; a reply may still come.
func (c *Client) forget(id string) {
	c.mu.Lock()
	if _, ok := c.pending[id]; ok {
		delete(c.pending, id)
		c.abandoned[id] = true
	}
	c.mu.Unlock()
}

// Events returns a copy of every event received so far, oldest first.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// WaitEvent returns the first event at index from or later (in the order
// Events returns them) for which match is true, and its index, waiting
// for it if needed.
func (c *Client) WaitEvent(ctx context.Context, from int, match func(Event) bool) (Event, int, error) {
	for {
		c.mu.Lock()
		for i := max(from, 0); i < len(c.events); i++ {
			if match(c.events[i]) {
				e := c.events[i]
				c.mu.Unlock()
				return e, i, nil
			}
		}
		from = len(c.events)
		changed, err := c.eventsChanged, c.err
		c.mu.Unlock()
		if err != nil {
			return Event{}, 0, fmt.Errorf("waiting for an event: %w", err)
		}
		select {
		case <-ctx.Done():
			return Event{}, 0, fmt.Errorf("waiting for an event: %w", ctx.Err())
		case <-changed:
		}
	}
}

// Close ends the connection and waits for the reader to stop.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// migrationStatus is the status a MIGRATION event announces, "" for any
// other event.
func migrationStatus(e Event) string {
	if e.Name != "MIGRATION" {
		return ""
	}
	var d struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Status
}
