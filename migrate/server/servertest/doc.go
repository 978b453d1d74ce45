// Package servertest runs real `migtrace serve` processes for tests: it
// builds the migtrace binary once per test process (Binary), starts serve
// on a free loopback port and waits until its API answers (Start), stops
// it when the test ends, polls its status (Await, WaitState,
// WaitMigration) and runs other migtrace commands against it (Run,
// Migrate). It is test support, not production code: it lives in non-test
// files only so that every package's tests can import it.
//
// Helpers that take a testing.TB fail the test rather than return errors
// and bound their waits with the timeouts below; the others take a
// context and return errors, for use off the test's goroutine.
package servertest
