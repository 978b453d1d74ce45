package main

import (
	"os"
	"testing"

	"github.com/migtrace/migtrace/migrate/server/servertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	servertest.RemoveBinary()
	os.Exit(code)
}
