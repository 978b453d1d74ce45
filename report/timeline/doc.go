// Package timeline lays each migration of a trace on one time axis, for
// `migtrace report timeline` to draw (report/render draws it): both sides'
// phases as bars, the guest's blackout from the source's pause to the
// destination's resume, the source's downtime, the pre-copy rounds, the
// destination's time-data stages, and where a failed migration failed.
//
// The axis is the source's wall clock. Phase begin and end times are each
// host's monotonic clock, so every side needs a way onto wall time: its
// phase spans' wall start times (the usual case), else the time-data
// snapshot its destination recorded (hrtime and wall clock read together),
// else an alignment of its Sync phase with the destination's, which is
// stated as carrying no clock evidence. The destination's wall clock is
// then shifted onto the source's by the recorded clock-offset estimate,
// whose error bound travels with the picture; without an estimate the
// hosts' clocks are taken to agree and the Timeline says so.
//
// Bars keep the monotonic durations the phase tables print: a bar's
// length on the axis and its label are the same (end − begin) the
// D scripts compute.
//
// Caption lines are a summary computed from the recorded numbers (slowest
// phase, blackout against downtime, what the blackout was spent on); they
// are not a diagnosis.
package timeline
