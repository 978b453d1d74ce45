// Package spancodec is the one place where a migration side
// (model.Side) becomes spans, span events and attributes, and where spans
// become a model.Side again.
//
// encode.go builds the attribute sets that package migrate sets on its
// live OpenTelemetry spans, and builds whole OTLP traces (pdata) from a
// finished side for the probe tracer and the test builders. decode.go
// folds OTLP spans, from a file, a collector or Jaeger, back into sides.
// A side encoded and decoded again compares equal (see the round-trip
// tests), so what report says of a trace is what migrate recorded.
//
// The layout of a side in a trace: a root span named schema.SpanMigration
// carrying the identity and outcome, one child span per phase the side
// ran, and events on the phase span where they happened (see EventPhase).
package spancodec
