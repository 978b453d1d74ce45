// Package tracingtest runs a real Jaeger v2 (built by tracing/jaeger/build.sh
// into <repo>/bin/jaeger) for component tests, and fetches traces back from
// its API v3.
//
// StartJaeger skips the test when the binary is missing, unless CI=true, in
// which case a missing binary is a failure: CI must exercise the real
// component. Errors starting or talking to Jaeger fail the test with the
// tail of Jaeger's log.
package tracingtest
