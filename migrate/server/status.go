package server

import (
	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/tracing/model"
)

// State is an instance server's state, as GET /v1/instance reports it.
type State string

// The states. A server without a VM is waiting; a failed migration in
// leaves it failed and a successful one out leaves it migrated, and in
// both it can take a VM in again; a failed migration out leaves it running.
const (
	StateWaiting      State = "waiting"
	StateRunning      State = "running"
	StatePaused       State = "paused"
	StateMigratingIn  State = "migrating-in"
	StateMigratingOut State = "migrating-out"
	StateMigrated     State = "migrated"
	StateFailed       State = "failed"
	// StateHandoffPending: the current migration's handoff lost a message
	// and this side holds the paused guest until its peer, or an operator
	// (migtrace resolve), settles which side runs it.
	StateHandoffPending State = "handoff-pending"
)

// InstanceStatus is the body of GET /v1/instance.
type InstanceStatus struct {
	Name        string           `json:"name"`
	State       State            `json:"state"`
	Backend     string           `json:"backend"`
	MemoryBytes uint64           `json:"memory_bytes"`
	GuestTSC    uint64           `json:"guest_tsc"`
	Address     string           `json:"address,omitempty"`
	Migration   *MigrationStatus `json:"migration"`
}

// MigrationStatus is the current or last migration.
type MigrationStatus struct {
	ID    string `json:"id"`
	Role  string `json:"role"`
	Peer  string `json:"peer,omitempty"`
	Phase string `json:"phase"`
	// Result is ResultRunning while in flight, then schema.ResultSuccess,
	// schema.ResultFailure or schema.ResultCancelled.
	Result     string `json:"result"`
	Error      string `json:"error,omitempty"`
	ErrorPhase string `json:"error_phase,omitempty"`
	// Handoff is this side's handoff state (migrate.HandoffState), once
	// the migration reaches the handoff.
	Handoff migrate.HandoffState `json:"handoff,omitempty"`
	// Progress is the latest progress report while running.
	Progress *ProgressStatus `json:"progress,omitempty"`
	// Settings are the migration's settings now (those it started with
	// and every change since) while it runs; Detail records them after.
	// A destination knows of the changes sent through it and those its
	// source passed on.
	Settings *model.Settings `json:"settings,omitempty"`
	// CancelledBy is who cancelled it, once a cancel was accepted.
	CancelledBy string `json:"cancelled_by,omitempty"`
	// Detail is the side's full record once the migration ended.
	Detail *model.Side `json:"detail,omitempty"`
}

// ProgressStatus is migrate.Progress in JSON form.
type ProgressStatus struct {
	Phase          string  `json:"phase"`
	Round          int     `json:"round"`
	RoundPages     uint64  `json:"round_pages"`
	RoundDone      uint64  `json:"round_done"`
	Bytes          uint64  `json:"bytes"`
	RemainingBytes uint64  `json:"remaining_bytes"`
	Rate           float64 `json:"rate_bytes_per_sec"`
	ETANs          int64   `json:"eta_ns"`
}

// MigrateRequest is the body of POST /v1/migrate.
type MigrateRequest struct {
	Source string `json:"source"`
	// Settings override this server's and the source's flags for this
	// migration only; the source applies those that act there.
	Settings *migrate.Settings `json:"settings,omitempty"`
}

// MigrateResponse answers POST /v1/migrate.
type MigrateResponse struct {
	ID string `json:"id"`
}

// ErrorResponse is the body of every 4xx/5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// ResultRunning is MigrationStatus.Result while the migration runs; it
// then becomes schema.ResultSuccess, schema.ResultFailure or
// schema.ResultCancelled.
const ResultRunning = "running"
