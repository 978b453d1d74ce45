package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// available reports what this machine lacks for a lab, wrapping
// ErrUnsupported.
func available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: network namespaces and veths need root (euid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("%w: this kernel has no network namespaces: %v", ErrUnsupported, err)
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := lookTool(tool); err != nil {
			return fmt.Errorf("%w: %s (iproute2) is not installed: %v", ErrUnsupported, tool, err)
		}
	}
	return nil
}

// timeNamespaces reports whether the kernel has time namespaces (5.6+).
func timeNamespaces() error {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		return fmt.Errorf("%w: this kernel has no time namespaces: %v", ErrUnsupported, err)
	}
	return nil
}

// nsThread runs fn on a fresh OS thread that has entered the network
// namespace open as netns and, when offset is non-nil, whose children get
// a new time namespace with CLOCK_MONOTONIC and CLOCK_BOOTTIME offset by
// it, and returns when fn does. The thread is never handed back to the Go
// scheduler: its goroutine ends locked, so the runtime ends the thread
// with it. A process fn starts is tied to the thread (its parent-death
// signal fires when the thread ends), so fn must reap such a process
// before it returns.
func nsThread(netns *os.File, offset *time.Duration, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread, on purpose: see above.
		if err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", netns.Name(), err)
			return
		}
		if offset != nil {
			if err := newTimeNamespace(*offset); err != nil {
				errc <- err
				return
			}
		}
		fn()
		errc <- nil
	}()
	return <-errc
}

// newTimeNamespace gives the calling thread's future children a new time
// namespace offset by d. A process enters it when it is created (or, for
// a vfork child as Go makes, when it execs), so offsets are written before
// anything lives there, which the kernel requires.
func newTimeNamespace(d time.Duration) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("creating time namespace: %w", err)
	}
	sec, nsec := int64(d/time.Second), int64(d%time.Second)
	if nsec < 0 {
		// The kernel takes a non-negative nanosecond part.
		sec, nsec = sec-1, nsec+int64(time.Second)
	}
	offsets := fmt.Sprintf("monotonic %d %d\nboottime %d %d\n", sec, nsec, sec, nsec)
	// /proc/TID, not /proc/self: the offsets belong to this thread's
	// namespace for children, not to the thread group leader's (and
	// /proc/thread-self has no timens_offsets).
	path := "/proc/" + strconv.Itoa(unix.Gettid()) + "/timens_offsets"
	if err := os.WriteFile(path, []byte(offsets), 0); err != nil {
		if errors.Is(err, syscall.ERANGE) {
			return fmt.Errorf("creating time namespace: offset %v would take a clock below zero or out of range: %w", d, err)
		}
		return fmt.Errorf("creating time namespace: setting offset %v: %w", d, err)
	}
	return nil
}

// childAttr makes a child die with the thread that started it, so a
// crashed test leaves no serve behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// tryLock takes an exclusive flock on f without waiting; ok is false when
// another open file holds it.
func tryLock(f *os.File) (ok bool, err error) {
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// lockDir holds one lock file per lab slot.
const lockDir = "/run/mtlab"
