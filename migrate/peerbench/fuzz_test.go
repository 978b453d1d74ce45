package peerbench

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeMessage feeds DecodeMessage arbitrary lines: it must never
// panic, must refuse with ErrMalformed, and whatever it accepts must hold
// together: one kind, an event's name and time, an error's class.
func FuzzDecodeMessage(f *testing.F) {
	for _, seed := range []string{
		testGreeting,
		`{"return": {}}`,
		`{"return": {"status": "completed", "total-time": 187, "downtime": 70, "ram": {"duplicate": 6034, "normal": 10859, "dirty-sync-count": 3, "page-size": 4096}}, "id": "7"}`,
		`{"error": {"class": "GenericError", "desc": "There's a migration process in progress"}, "id": "3"}`,
		`{"timestamp": {"seconds": 1796043175, "microseconds": 617914}, "event": "STOP"}`,
		`{"timestamp": {"seconds": 1796043175, "microseconds": 629000}, "event": "MIGRATION", "data": {"status": "completed"}}`,
		`{"timestamp": {"seconds": 1796043175, "microseconds": 1}, "event": "MIGRATION_PASS", "data": {"pass": 3}}`,
		`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 1000000}}`,
		`{"return": {}, "error": {"class": "x"}}`,
		`{"QMP": {}}` + "\r\n",
		`{"timestamp": {"seconds": 9223372036, "microseconds": 999999}, "event": "X"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := DecodeMessage(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refusal %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch m.Kind {
		case KindGreeting:
			if !json.Valid(m.Greeting) {
				t.Fatalf("greeting %q is not JSON", m.Greeting)
			}
		case KindReturn:
			if !json.Valid(m.Return) {
				t.Fatalf("return value %q is not JSON", m.Return)
			}
		case KindError:
			if m.Error == nil || m.Error.Class == "" {
				t.Fatalf("error reply without a class: %+v", m.Error)
			}
		case KindEvent:
			if m.Event == "" {
				t.Fatal("event without a name")
			}
			if m.Time.Unix() < 0 || m.Time.Nanosecond()%1000 != 0 {
				t.Fatalf("event time %v is not whole microseconds since 1970", m.Time)
			}
			// Written back as QEMU would write it, the event must decode
			// to the same name, time and data.
			again, err := json.Marshal(map[string]any{
				"timestamp": map[string]int64{"seconds": m.Time.Unix(), "microseconds": int64(m.Time.Nanosecond() / 1000)},
				"event":     m.Event,
				"data":      m.Data,
			})
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", m, err)
			}
			m2, err := DecodeMessage(again)
			if err != nil {
				t.Fatalf("re-encoded event %s refused: %v", again, err)
			}
			if m2.Event != m.Event || !m2.Time.Equal(m.Time) || !sameJSON(m2.Data, m.Data) {
				t.Fatalf("event %+v came back as %+v", m, m2)
			}
		default:
			t.Fatalf("accepted a message of kind %v", m.Kind)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value, a nil
// message counting as null.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if a != nil && json.Unmarshal(a, &va) != nil {
		return false
	}
	if b != nil && json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}
