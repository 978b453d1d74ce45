package migrate

import (
	"context"
	"math"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/timedata"
)

func spanFrom(ctx context.Context) trace.Span { return trace.SpanFromContext(ctx) }

// wallNs converts a wall clock to Unix ns, saturating far outside the
// int64 range (about the years 1678 to 2262).
func wallNs(w timedata.Wallclock) int64 {
	if w.Sec >= math.MaxInt64/timedata.NsPerSec {
		return math.MaxInt64
	}
	return int64(w.Sec)*timedata.NsPerSec + int64(w.Nsec)
}
