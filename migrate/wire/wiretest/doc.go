// Package wiretest helps tests of the migration wire layer and its users:
// a throwaway PKI (a CA, server and client certificates, an expired one and
// one from a CA nobody trusts), written as PEM files to the test's
// temporary directory, and a loopback TCP connection pair.
//
// Helpers fail the test (t.Fatalf) rather than return errors.
package wiretest
