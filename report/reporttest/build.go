package reporttest

import (
	"bufio"
	"io"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// TraceID is the trace id both sides of a migration share when built from
// a model without one: derived from the migration id, so that generated
// files are reproducible.
func TraceID(migrationID string) pcommon.TraceID {
	return spancodec.TraceID(&model.Side{ID: migrationID})
}

// Traces returns one TracesData holding every side, each under its own
// resource (one per host process), encoded by spancodec as migrate's
// spans are.
func Traces(ms ...model.Side) ptrace.Traces {
	return spancodec.Traces(spancodec.Options{}, ms...)
}

// WriteJSONL writes each TracesData as one OTLP JSON line.
func WriteJSONL(w io.Writer, tds ...ptrace.Traces) error {
	bw := bufio.NewWriter(w)
	var jm ptrace.JSONMarshaler
	for _, td := range tds {
		b, err := jm.MarshalTraces(td)
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WithSourceReport returns destination dst recording src's phases and
// downtime as the source reports them in its Finish message (what the
// wire carries of each phase: its times, bytes and pages).
func WithSourceReport(dst, src model.Side) model.Side {
	dst.SourcePhases = nil
	for _, p := range src.Phases {
		dst.SourcePhases = append(dst.SourcePhases, model.PhaseTiming{
			Phase: p.Phase, BeginNs: p.BeginNs, EndNs: p.EndNs, Bytes: p.Bytes, Pages: p.Pages})
	}
	dst.SourceDowntimeNs = src.DowntimeNs
	return dst
}
