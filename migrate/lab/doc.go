// Package lab runs several migtrace hosts on one Linux machine, for tests
// that need two hosts, two clocks and real links between them.
//
// A host is a network namespace (ip netns) named mtlab-SLOT-NAME. Each has
// a management veth to the root namespace, where the test process runs:
// the test reaches the host's `migtrace serve` at Host.APIAddr over it.
// Hosts reach each other only over what a test adds between them:
//
//   - Lab.Link: a veth pair with a /30 of its own, optionally shaped by a
//     tbf qdisc on each end (LinkOptions.Rate). Link.Partition and
//     Link.Drop swap in a blackhole qdisc, which drops silently (both ways,
//     or one); Heal restores the shaping; Link.Cut deletes the pair.
//   - Lab.Proxy: a TCP path through toxiproxy (used as a library, in the
//     test process) for latency, jitter, one-way delay, bandwidth, held
//     data (Proxy.Partition), timeouts and resets. It listens on the root
//     end of the client's management veth and dials the server's
//     management address.
//
// A host with HostOptions.MonotonicOffset runs its processes in a time
// namespace whose CLOCK_MONOTONIC and CLOCK_BOOTTIME are offset by it; the
// wall clock (CLOCK_REALTIME) cannot be offset by a namespace, so a host
// whose wall clock is off runs serve with --sim-wallclock-offset.
//
// Processes are started from a locked OS thread that entered the host's
// namespaces, so a child is in them from its first instruction, with a
// parent-death signal so none outlives a crashed test.
//
// Addresses: lab slot SLOT owns 10.199.SLOT.0/24, cut into 64 /30s, one
// per management veth or link; the root namespace gets an unreachable
// route for the /24 while the lab lives, so traffic to a host that is gone
// fails instead of leaving the machine, and the lab's own HTTP client
// dials nothing but its hosts. A slot is held by an flock on
// /run/mtlab/slot-SLOT.lock, which the kernel drops when its holder dies:
// New sweeps the namespaces, veths and routes of every slot nobody holds,
// so a crashed run's leftovers go away with the next lab. Close removes
// everything the lab made; ForTest registers it with t.Cleanup.
//
// Everything needs root; Available reports, wrapping ErrUnsupported, what
// a machine lacks. On other systems every entry point returns
// ErrUnsupported.
package lab
