// Package model defines what one side of one migration is: the single
// record that package migrate fills while it runs, that the instance
// server serves as JSON, that package spancodec turns into spans and back,
// and that package report renders and checks.
//
// It imports nothing of migtrace but tracing/schema, so that report can
// work on it without pulling in the protocol, the VMM backends or the
// OpenTelemetry SDK.
package model
