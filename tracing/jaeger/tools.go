//go:build tools

// Package jaeger pins the Jaeger v2 binary (v1.76.0, the same release as
// v2.13.0) that the tracing component tests run. It is a module of its own
// so Jaeger's dependency graph (otel v1.38, pdata v1.46, collector v0.140)
// never meets migtrace's through MVS. go.mod declares the command with a
// tool directive and repeats Jaeger's one replace (Shopify/sarama v1.33.0),
// without which the graph does not resolve. Build with ./build.sh, which
// writes <repo>/bin/jaeger only when it is missing.
package jaeger

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
