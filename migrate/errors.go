package migrate

import (
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/tracing/schema"
)

// Sentinels; match with errors.Is.
var (
	// ErrVerification: the destination's check at the handoff failed
	// (memory checksum, device state or the guest TSC ring).
	ErrVerification = errors.New("verification failed")
	// ErrProtocol: the peer broke the protocol (bad counts, pages out of
	// range, an ID that does not match).
	ErrProtocol = errors.New("protocol violation")
)

// Error is a failed migration: which side failed, in which phase, and why.
type Error struct {
	Role  schema.Role
	Phase schema.Phase
	Err   error
}

func (e *Error) Error() string {
	if errors.Is(e.Err, ErrCancelled) {
		return fmt.Sprintf("migration cancelled in phase %s (%s): %v", e.Phase, e.Role, e.Err)
	}
	return fmt.Sprintf("migration failed in phase %s (%s): %v", e.Phase, e.Role, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// FailedPhase returns the phase named by an *Error in err's chain.
func FailedPhase(err error) (schema.Phase, bool) {
	var me *Error
	if errors.As(err, &me) {
		return me.Phase, true
	}
	return 0, false
}
