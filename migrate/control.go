package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// Sentinels of steering a migration; match with errors.Is.
var (
	// ErrCancelled: an operator cancelled the migration before the
	// handoff (a *CancelledError says who).
	ErrCancelled = errors.New("migration cancelled")
	// ErrTooLate: a cancel that came at or after the handoff, where it
	// could lose or duplicate the guest (a *TooLateError says where).
	ErrTooLate = errors.New("too late to cancel")
	// ErrNotRunning: the migration has not started yet or has ended.
	ErrNotRunning = errors.New("migration not running")
)

// CancelledError is the error of a cancelled migration.
type CancelledError struct {
	// By says who asked: the server that took the request and its client.
	By string
}

func (e *CancelledError) Error() string { return "cancelled by " + e.By }

// Is matches ErrCancelled.
func (e *CancelledError) Is(target error) bool { return target == ErrCancelled }

// TooLateError refuses a cancel at or after the handoff.
type TooLateError struct {
	Role  schema.Role
	State HandoffState
}

func (e *TooLateError) Error() string {
	why := "the handoff has begun"
	switch e.State {
	case HandoffUndecided:
		why = "the source has sent Finish and the destination may be about to run the guest"
	case HandoffReady:
		why = "the destination has verified the guest and told the source it is ready to run it"
	case HandoffCommitted, HandoffResumed, HandoffCompleted:
		why = "the guest has been handed off"
	case HandoffAborted:
		why = "the migration was already abandoned"
	}
	return fmt.Sprintf("too late to cancel: the %s is at handoff state %q: %s; only its outcome can follow now (a stuck handoff is settled with POST /v1/migrations/ID/resolve)",
		e.Role, e.State, why)
}

// Is matches ErrTooLate.
func (e *TooLateError) Is(target error) bool { return target == ErrTooLate }

// Control steers one side of a running migration: an operator cancels
// it, or changes its settings, from another goroutine (the server's
// API). Its methods are safe for concurrent use.
type Control struct {
	mu      sync.Mutex
	state   controlState
	role    schema.Role
	handoff *Handoff
	span    trace.Span
	conn    *wire.Conn
	phase   schema.Phase
	// initial and cur are this side's settings at the start and now; peer
	// holds the source's, as a destination learnt them at the upgrade.
	initial, cur model.Settings
	peer         *model.Settings
	changes      []model.SettingChange
	// cancelBy is set once a cancel is accepted; stop cancels the
	// migration's context, and fired says it was called.
	cancelBy string
	stop     context.CancelCauseFunc
	fired    bool
}

type controlState uint8

const (
	controlNew controlState = iota
	controlRunning
	controlDone
)

// NewControl returns a Control for a migration about to start.
func NewControl() *Control { return &Control{} }

// bind attaches the Control to side s as it starts: its settings become
// the side's, and a cancel accepted before the start takes effect now.
func (c *Control) bind(s *side, stop context.CancelCauseFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state, c.role, c.handoff, c.span, c.stop = controlRunning, s.role, s.cfg.Handoff, s.span, stop
	c.initial = s.cfg.Settings()
	c.cur = c.initial
	if c.cancelBy != "" {
		c.handoff.closeGate()
		if c.fired {
			stop(&CancelledError{By: c.cancelBy})
		}
	}
}

// setConn gives the Control the side's stream, so that a new bandwidth
// cap reaches it.
func (c *Control) setConn(conn *wire.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	if c.cur.MaxBandwidth != c.initial.MaxBandwidth {
		conn.SetMaxBandwidth(c.cur.MaxBandwidth)
	}
}

func (c *Control) setPhase(p schema.Phase) {
	c.mu.Lock()
	c.phase = p
	c.mu.Unlock()
}

// finish marks the migration ended: later cancels and changes are
// refused with ErrNotRunning.
func (c *Control) finish() {
	c.mu.Lock()
	c.state = controlDone
	c.conn = nil
	c.mu.Unlock()
}

// SetPeerSettings tells a destination the settings its source runs the
// migration with (the source answers the upgrade with them), which it
// then records as the migration's.
func (c *Control) SetPeerSettings(st model.Settings) {
	c.mu.Lock()
	c.peer = &st
	c.mu.Unlock()
}

// recorded returns what the side records as the migration's settings at
// the start: the source's, with the destination's own clock-skew
// correction, which only the destination applies.
func (c *Control) recorded() model.Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recordedLocked(c.initial)
}

func (c *Control) recordedLocked(own model.Settings) model.Settings {
	if c.peer == nil || c.role != schema.RoleDestination {
		return own
	}
	st := *c.peer
	st.ClockSkewCorrection = own.ClockSkewCorrection
	return st
}

// Settings returns the migration's settings now: those it started with
// and every change since.
func (c *Control) Settings() model.Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.recordedLocked(c.initial)
	for _, ch := range c.changes {
		st = applyChange(st, ch)
	}
	return st
}

// Running reports whether the migration has started and not ended.
func (c *Control) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == controlRunning
}

// live returns this side's own settings now, which the side acts on.
func (c *Control) live() model.Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Changes returns the changes made so far, in order.
func (c *Control) Changes() []model.SettingChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.changes)
}

// Update changes the running migration's settings on behalf of by. It
// refuses, changing nothing, settings that are invalid or act only at
// the start (ErrInvalidSettings), and a migration not running
// (ErrNotRunning). It returns the changes it made, one per setting whose
// value changed, each recorded as a schema.EventSettingChanged on the
// root span; a new bandwidth cap applies to the stream at once, and the
// pre-copy loop reads the rest at its next decision.
func (c *Control) Update(st Settings, by string) ([]model.SettingChange, error) {
	if err := st.ValidateInFlight(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != controlRunning {
		return nil, c.notRunning()
	}
	next := st.Apply(c.cur)
	now := time.Now()
	var made []model.SettingChange
	for _, name := range []string{schema.SettingMaxBandwidth, schema.SettingDowntimeTarget, schema.SettingMaxRounds, schema.SettingAutoConverge} {
		old, _ := c.cur.Value(name)
		v, _ := next.Value(name)
		if old != v {
			made = append(made, model.SettingChange{Time: now, Setting: name, Old: old, New: v, Phase: c.phase, By: by})
		}
	}
	c.recordLocked(made)
	return made, nil
}

// Record applies and records changes another side made, as a destination
// does with those it forwarded to its source, so that both sides' traces
// hold them.
func (c *Control) Record(changes []model.SettingChange) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != controlRunning {
		return c.notRunning()
	}
	c.recordLocked(changes)
	return nil
}

func (c *Control) recordLocked(changes []model.SettingChange) {
	bw := c.cur.MaxBandwidth
	for _, ch := range changes {
		// In the order the source made them: changes it passed on itself
		// may arrive after later ones forwarded through this side.
		i := len(c.changes)
		for i > 0 && c.changes[i-1].Time.After(ch.Time) {
			i--
		}
		c.changes = slices.Insert(c.changes, i, ch)
		if c.span != nil {
			c.span.AddEvent(schema.EventSettingChanged, trace.WithTimestamp(ch.Time),
				trace.WithAttributes(spancodec.SettingChangeAttributes(ch)...))
		}
	}
	c.cur = c.initial
	for _, ch := range c.changes {
		c.cur = applyChange(c.cur, ch)
	}
	if c.cur.MaxBandwidth != bw && c.conn != nil {
		c.conn.SetMaxBandwidth(c.cur.MaxBandwidth)
	}
}

// applyChange returns st with change ch made.
func applyChange(st model.Settings, ch model.SettingChange) model.Settings {
	var s Settings
	b := ch.New != 0
	switch ch.Setting {
	case schema.SettingMaxBandwidth:
		s.MaxBandwidth = &ch.New
	case schema.SettingDowntimeTarget:
		s.DowntimeTargetNs = &ch.New
	case schema.SettingMaxRounds:
		s.MaxRounds = &ch.New
	case schema.SettingAutoConverge:
		s.AutoConverge = &b
	}
	return s.Apply(st)
}

func (c *Control) notRunning() error {
	if c.state == controlNew {
		return fmt.Errorf("%w: it has not started yet", ErrNotRunning)
	}
	return fmt.Errorf("%w: it has ended", ErrNotRunning)
}

// Cancel cancels the migration on behalf of by, before the handoff: the
// side then ends as a failure would (a source resumes its guest with its
// memory and dirty log intact, a destination discards what it built) and
// records a cancellation. It is BeginCancel with nothing to do between
// accepting the cancel and acting on it.
func (c *Control) Cancel(by string) error {
	commit, err := c.BeginCancel(by)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// BeginCancel accepts a cancel on behalf of by and returns the function
// that carries it out. From the moment it returns, this side can no
// longer enter the handoff, so the caller may tell the peer before the
// stream breaks under it. It refuses with a *TooLateError at or after
// the handoff (the source's HandoffUndecided, the destination's
// HandoffReady), and with ErrNotRunning once the migration ended. A
// second cancel succeeds and keeps the first one's by: the outcome is
// one cancellation, whoever asked.
func (c *Control) BeginCancel(by string) (commit func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == controlDone {
		return nil, c.notRunning()
	}
	if c.cancelBy == "" {
		if c.handoff != nil {
			if st, ok := c.handoff.closeGate(); !ok {
				return nil, &TooLateError{Role: c.role, State: st}
			}
		}
		c.cancelBy = by
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.fired = true
		if c.stop != nil {
			c.stop(&CancelledError{By: c.cancelBy})
		}
	}, nil
}

// AdoptCancelledBy makes by the record of who cancelled the migration,
// once a cancel was accepted, in place of whoever this side recorded. A
// destination adopts its source's record, so that cancels asked of both
// servers at once leave both sides naming the same one.
func (c *Control) AdoptCancelledBy(by string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelBy != "" && by != "" {
		c.cancelBy = by
	}
}

// CancelledBy says who cancelled the migration, once a cancel was
// accepted.
func (c *Control) CancelledBy() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelBy, c.cancelBy != ""
}
