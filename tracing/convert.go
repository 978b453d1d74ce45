package tracing

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// OTLP span flag bits (opentelemetry-proto trace.proto, SpanFlags): the low
// byte carries the W3C trace flags, the next two bits whether the parent
// (or the linked span) was remote.
const (
	flagContextHasIsRemote = 0x100
	flagContextIsRemote    = 0x200
)

// resourceKey groups spans by resource; resources with the same attribute
// set and schema URL are one OTLP ResourceSpans.
type resourceKey struct {
	attrs     attribute.Distinct
	schemaURL string
}

// scopeKey groups spans by instrumentation scope within a resource.
type scopeKey struct {
	name, version, schemaURL string
	attrs                    attribute.Distinct
}

// spansToTraces converts SDK spans to pdata, grouping them by resource and
// scope in the order they first appear.
func spansToTraces(spans []sdktrace.ReadOnlySpan) ptrace.Traces {
	td := ptrace.NewTraces()
	type resourceGroup struct {
		rs     ptrace.ResourceSpans
		scopes map[scopeKey]ptrace.ScopeSpans
	}
	groups := make(map[resourceKey]*resourceGroup)
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		rk := resourceKey{}
		if res != nil {
			rk = resourceKey{attrs: res.Equivalent(), schemaURL: res.SchemaURL()}
		}
		g, ok := groups[rk]
		if !ok {
			g = &resourceGroup{rs: td.ResourceSpans().AppendEmpty(), scopes: make(map[scopeKey]ptrace.ScopeSpans)}
			fillResource(g.rs, res)
			groups[rk] = g
		}
		scope := s.InstrumentationScope()
		sk := scopeKey{name: scope.Name, version: scope.Version, schemaURL: scope.SchemaURL, attrs: scope.Attributes.Equivalent()}
		ss, ok := g.scopes[sk]
		if !ok {
			ss = g.rs.ScopeSpans().AppendEmpty()
			fillScope(ss, scope)
			g.scopes[sk] = ss
		}
		fillSpan(ss.Spans().AppendEmpty(), s)
	}
	return td
}

func fillResource(rs ptrace.ResourceSpans, res *resource.Resource) {
	if res == nil {
		return
	}
	rs.SetSchemaUrl(res.SchemaURL())
	putAttributes(rs.Resource().Attributes(), res.Attributes())
}

func fillScope(ss ptrace.ScopeSpans, scope instrumentation.Scope) {
	ss.SetSchemaUrl(scope.SchemaURL)
	sc := ss.Scope()
	sc.SetName(scope.Name)
	sc.SetVersion(scope.Version)
	putAttributes(sc.Attributes(), scope.Attributes.ToSlice())
}

func fillSpan(dst ptrace.Span, s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	dst.SetTraceID(pcommon.TraceID(sc.TraceID()))
	dst.SetSpanID(pcommon.SpanID(sc.SpanID()))
	dst.TraceState().FromRaw(sc.TraceState().String())
	parent := s.Parent()
	if parent.SpanID().IsValid() {
		dst.SetParentSpanID(pcommon.SpanID(parent.SpanID()))
	}
	dst.SetFlags(spanFlags(sc.TraceFlags(), parent))
	dst.SetName(s.Name())
	dst.SetKind(spanKind(s.SpanKind()))
	dst.SetStartTimestamp(pcommon.NewTimestampFromTime(s.StartTime()))
	dst.SetEndTimestamp(pcommon.NewTimestampFromTime(s.EndTime()))
	putAttributes(dst.Attributes(), s.Attributes())
	dst.SetDroppedAttributesCount(clampUint32(s.DroppedAttributes()))

	events := s.Events()
	dst.Events().EnsureCapacity(len(events))
	for _, ev := range events {
		de := dst.Events().AppendEmpty()
		de.SetName(ev.Name)
		de.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
		putAttributes(de.Attributes(), ev.Attributes)
		de.SetDroppedAttributesCount(clampUint32(ev.DroppedAttributeCount))
	}
	dst.SetDroppedEventsCount(clampUint32(s.DroppedEvents()))

	links := s.Links()
	dst.Links().EnsureCapacity(len(links))
	for _, l := range links {
		dl := dst.Links().AppendEmpty()
		dl.SetTraceID(pcommon.TraceID(l.SpanContext.TraceID()))
		dl.SetSpanID(pcommon.SpanID(l.SpanContext.SpanID()))
		dl.TraceState().FromRaw(l.SpanContext.TraceState().String())
		dl.SetFlags(spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		putAttributes(dl.Attributes(), l.Attributes)
		dl.SetDroppedAttributesCount(clampUint32(l.DroppedAttributeCount))
	}
	dst.SetDroppedLinksCount(clampUint32(s.DroppedLinks()))

	st := s.Status()
	dst.Status().SetCode(statusCode(st.Code))
	dst.Status().SetMessage(st.Description)
}

// spanFlags encodes the W3C flags and whether remote is a remote context,
// as the OTLP exporters do.
func spanFlags(tf trace.TraceFlags, remote trace.SpanContext) uint32 {
	flags := uint32(tf) | flagContextHasIsRemote
	if remote.IsRemote() {
		flags |= flagContextIsRemote
	}
	return flags
}

// spanKind maps explicitly: the two enums agree today, but pdata's is the
// wire format and the API's is not.
func spanKind(k trace.SpanKind) ptrace.SpanKind {
	switch k {
	case trace.SpanKindInternal:
		return ptrace.SpanKindInternal
	case trace.SpanKindServer:
		return ptrace.SpanKindServer
	case trace.SpanKindClient:
		return ptrace.SpanKindClient
	case trace.SpanKindProducer:
		return ptrace.SpanKindProducer
	case trace.SpanKindConsumer:
		return ptrace.SpanKindConsumer
	}
	return ptrace.SpanKindUnspecified
}

// statusCode maps the API's codes, whose numbering (Error=1, Ok=2) differs
// from OTLP's (Ok=1, Error=2).
func statusCode(c codes.Code) ptrace.StatusCode {
	switch c {
	case codes.Ok:
		return ptrace.StatusCodeOk
	case codes.Error:
		return ptrace.StatusCodeError
	}
	return ptrace.StatusCodeUnset
}

func clampUint32(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case uint64(n) > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(n)
}

func putAttributes(dst pcommon.Map, attrs []attribute.KeyValue) {
	dst.EnsureCapacity(len(attrs))
	for _, kv := range attrs {
		putValue(dst.PutEmpty(string(kv.Key)), kv.Value)
	}
}

// putValue writes v into dst, keeping its type: OTLP has a value type for
// every attribute type the API offers.
func putValue(dst pcommon.Value, v attribute.Value) {
	switch v.Type() {
	case attribute.BOOL:
		dst.SetBool(v.AsBool())
	case attribute.INT64:
		dst.SetInt(v.AsInt64())
	case attribute.FLOAT64:
		dst.SetDouble(v.AsFloat64())
	case attribute.STRING:
		dst.SetStr(v.AsString())
	case attribute.BOOLSLICE:
		vals := v.AsBoolSlice()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(vals))
		for _, b := range vals {
			s.AppendEmpty().SetBool(b)
		}
	case attribute.INT64SLICE:
		vals := v.AsInt64Slice()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(vals))
		for _, n := range vals {
			s.AppendEmpty().SetInt(n)
		}
	case attribute.FLOAT64SLICE:
		vals := v.AsFloat64Slice()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(vals))
		for _, f := range vals {
			s.AppendEmpty().SetDouble(f)
		}
	case attribute.STRINGSLICE:
		vals := v.AsStringSlice()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(vals))
		for _, str := range vals {
			s.AppendEmpty().SetStr(str)
		}
	case attribute.BYTESLICE:
		dst.SetEmptyBytes().FromRaw(v.AsByteSlice())
	case attribute.SLICE:
		vals := v.AsSlice()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(vals))
		for _, e := range vals {
			putValue(s.AppendEmpty(), e)
		}
	case attribute.MAP:
		putAttributes(dst.SetEmptyMap(), v.AsMap())
	default:
		// EMPTY (and any type added later) stays an empty OTLP value, which
		// is what OTLP uses for "no value".
	}
}
