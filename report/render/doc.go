// Package render writes the report package's results: the phase table of
// propolis's live-migration-times.d, the time-adjustments.d table, fleet
// summaries and check verdicts, each to an io.Writer in one of the
// Formats.
//
// FormatDTrace reproduces the D scripts' printf layouts column for column,
// so output diffs cleanly against captures taken with DTrace; when several
// migrations are rendered each table follows a "migration ID ROLE" heading
// line, and with one the table is bare.
//
// Error contract: renderers return the first write error, or an error
// wrapping ErrUnsupportedFormat for a format the table does not have.
package render
