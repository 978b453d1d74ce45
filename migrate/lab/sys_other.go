//go:build !linux

package lab

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

func available() error {
	return fmt.Errorf("%w: network and time namespaces are Linux-only, this is %s", ErrUnsupported, runtime.GOOS)
}

func timeNamespaces() error { return available() }

func nsThread(*os.File, *time.Duration, func()) error { return available() }

func childAttr() *syscall.SysProcAttr { return nil }

func tryLock(*os.File) (bool, error) { return false, available() }

const lockDir = ""
