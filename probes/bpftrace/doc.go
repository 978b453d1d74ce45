// Package bpftrace holds the bpftrace scripts live-migration-times.bt and
// time-adjustments.bt, the Linux counterparts of propolis's D scripts, and
// the tests that run them against a real process. It has no Go API.
package bpftrace
