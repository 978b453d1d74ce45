// Package probetest holds the known inputs that the probe target
// (probes/internal/probetarget) feeds to the probes and that tests expect a
// tracer to see: a bulk pattern of distinct argument values per call, and a
// complete synthetic migration on each side built from the numbers in the
// propolis seed (../shared/golden), so traced tables can be compared with
// the golden captures.
package probetest
