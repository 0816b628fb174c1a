package telemetry

import "time"

// FailureReasons are the values of the reason label of qualys_certview_poll_failures_total.
var FailureReasons = []string{"auth", "throttled", "http_4xx", "http_5xx", "transport", "timeout", "paging", "other"}

// Why incremental polls are off: the values of the reason label of
// qualys_certview_incremental_disabled.
const (
	IncrementalOffConfigured    = "configured"     // poll.full_interval is 0
	IncrementalOffFilterOR      = "filter_or"      // a configured filter joins terms by OR
	IncrementalOffFilterRefused = "filter_refused" // the API answered 400 to an incremental filter
)

// IncrementalOffReasons lists every reason, for the metric.
var IncrementalOffReasons = []string{IncrementalOffConfigured, IncrementalOffFilterOR, IncrementalOffFilterRefused}

// Health is the state of the poll loop: the poll loop keeps it, the exposition shows it.
type Health struct {
	Up                  bool // the last poll succeeded
	LastSuccess         time.Time
	LastAttempt         time.Time
	LastDuration        time.Duration
	ConsecutiveFailures int
	LastError           string
	LastErrorReason     string
}
