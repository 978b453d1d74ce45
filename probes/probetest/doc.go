// Package probetest helps tests trace migtrace's probes in real processes.
// It is test support, not production code.
//
// It holds the known inputs that the probe target
// (probes/internal/probetarget) feeds to the probes and that a tracer must
// see: a bulk pattern of distinct argument values per call (BulkCall), and
// a complete synthetic migration on each side built from the numbers in the
// propolis seed (SeedSource, SeedDestination), whose tables are the golden
// captures. It also builds and starts target binaries (Build, BuildTarget,
// Start) and decides, in one place, when a privileged test may skip
// (SkipIfNotSupported, Bpftrace).
package probetest
