// Package migrate implements live migration of a vmm.VM between two hosts:
// the source and destination state machines, their phases in propolis's
// order, and what each phase records.
//
// The destination drives a migration: it dials the source (RunDestination),
// the source answers on its server (RunSource), and the two walk the phases
// Sync, RamPushPrePause, Pause (source only), RamPushPostPause, TimeData,
// DeviceState, RamPull, ServerState and Finish over a wire.Conn.
//
// Every phase is wrapped in a span, a probe pair (package probes) and a
// duration metric; the time-data stages become span events. Results are
// returned as a *Result, and failures as an *Error naming the phase and the
// side. If anything fails before the source's handoff, the source puts back
// the dirty bits it took and resumes its VM with its state intact, and the
// destination destroys the VM it was building. After the handoff the source
// never resumes.
package migrate
