// Package telemetry owns the exporter's metrics about itself: its API use (fed by the
// certview client's hooks), its polls and the snapshot file, and the poll loop's Health.
// It owns the label values of those metrics. It reads no snapshot's records and serves
// nothing itself: its collectors are registered with the exporter's registry.
package telemetry

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// Telemetry is the exporter's view of its own API use. The certview client reports to
// it through Hooks; it keeps Prometheus metrics and the counters the poll's progress log
// reads.
type Telemetry struct {
	requests        *prometheus.CounterVec
	remaining       *prometheus.GaugeVec
	limit           *prometheus.GaugeVec
	waits           *prometheus.CounterVec
	skipped         *prometheus.CounterVec
	polls           *prometheus.CounterVec
	pollFailures    *prometheus.CounterVec
	saves           *prometheus.CounterVec
	lastPollKind    *prometheus.GaugeVec
	lastPollCalls   *prometheus.GaugeVec
	lastPollRecords *prometheus.GaugeVec
	lastFull        prometheus.Gauge
	watermark       prometheus.Gauge
	incrementalOff  *prometheus.GaugeVec
	filterIgnored   *prometheus.CounterVec
	ownerDropped    *prometheus.CounterVec
	apiVersion      *prometheus.GaugeVec
	deprecated      *prometheus.GaugeVec
	sunset          *prometheus.GaugeVec
	coerced         *prometheus.CounterVec
	valuesCut       *prometheus.CounterVec
	outOfRange      *prometheus.CounterVec
	listingCalls    *prometheus.GaugeVec
	listingRecords  *prometheus.GaugeVec
	listingExpected *prometheus.GaugeVec
	listingRunning  prometheus.Gauge
	shrinkHeld      prometheus.Gauge
	shrinkRecords   *prometheus.GaugeVec
	shrinksHeld     prometheus.Counter
	pages           atomic.Int64
	records         atomic.Int64
	waitCount       atomic.Int64
	waitedMillis    atomic.Int64
}

// New makes the metrics; register them with Collectors.
func New() *Telemetry {
	t := &Telemetry{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_api_requests_total",
			Help: "HTTP requests the exporter made to the CertView API, by endpoint and status code (0: no response). Counted live by the exporter.",
		}, []string{"endpoint", "code"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_api_rate_limit_remaining",
			Help: "Calls left in the current rate-limit window per API, from the last X-RateLimit-Remaining header the API sent. Cached from the last response.",
		}, []string{"endpoint"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_api_rate_limit_limit",
			Help: "Calls allowed per rate-limit window per API: the last X-RateLimit-Limit header, or the configured rate_limit.calls until one arrives. Cached from the last response.",
		}, []string{"endpoint"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_api_wait_seconds_total",
			Help: "Seconds the client paused before API calls, by endpoint and reason (rate_limit, throttled, retry). Counted live by the exporter.",
		}, []string{"endpoint", "reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_api_records_skipped_total",
			Help: "Records the API sent that could not be decoded and were left out of the snapshot, by endpoint. Counted live by the exporter.",
		}, []string{"endpoint"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_polls_total",
			Help: "Polls of the CertView API, by result (success or failure). Counted live by the exporter.",
		}, []string{"result"}),
		pollFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_poll_failures_total",
			Help: "Failed polls by reason (auth, throttled, http_4xx, http_5xx, transport, timeout, paging, other). The previous snapshot stays served. Counted live by the exporter.",
		}, []string{"reason"}),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_snapshot_saves_total",
			Help: "Writes of the snapshot file (snapshot.path) after successful polls, by result (success or failure). Counted live by the exporter.",
		}, []string{"result"}),
		lastPollKind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_last_poll_kind",
			Help: "The kind of the last poll, successful or not: 1 for full (every record listed) or incremental (only what changed since the watermark), 0 for the other. Set by the poll loop.",
		}, []string{"kind"}),
		lastPollCalls: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_last_poll_api_calls",
			Help: "Listing calls the last poll made, per API endpoint (retries not counted). Set by the poll loop.",
		}, []string{"endpoint"}),
		lastPollRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_last_poll_records_fetched",
			Help: "Records the last poll fetched, per API endpoint: everything for a full poll, what changed for an incremental one. Set by the poll loop.",
		}, []string{"endpoint"}),
		lastFull: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "qualys_certview_last_full_poll_success_timestamp_seconds",
			Help: "When the full listing that the cached snapshot rests on finished, as a Unix timestamp. Removed records leave the snapshot only at a full listing. Set from the cached snapshot.",
		}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "qualys_certview_incremental_watermark_timestamp_seconds",
			Help: "The largest instance scannedDate in the cached snapshot, as a Unix timestamp: the next incremental poll asks for instances scanned since then, less poll.incremental_overlap. Set from the cached snapshot.",
		}),
		incrementalOff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_incremental_disabled",
			Help: "1 for the reason incremental polls are off, so that every poll lists everything: configured (poll.full_interval 0), filter_or (a configured filter joins terms by OR) or filter_refused (the API answered 400 to an incremental filter). Set by the poll loop.",
		}, []string{"reason"}),
		filterIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_incremental_filter_ignored_total",
			Help: "Incremental answers holding records their filter should have left out, per API endpoint: the API ignored the filter, and the answer was taken as a full listing. Counted live by the exporter.",
		}, []string{"endpoint"}),
		ownerDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qualys_certview_owner_label_values_dropped_total",
			Help: "Distinct values of an owner label (owners.labels) left out of a new snapshot because the label had more than its max_values; summed over polls. The instances that had them show the label empty. Counted by the poll loop.",
		}, []string{"label"}),
		apiVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_api_version_info",
			Help: "The CertView API version in use per endpoint (1): the configured one, or the newest that answered under certificates_api_version auto. Set by the last successful listing.",
		}, []string{"endpoint", "version"}),
		deprecated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_api_deprecated",
			Help: "1 when the CertView API answered an API version's calls with a Deprecation or Sunset header (RFC 9745, RFC 8594). Cached from the last response.",
		}, []string{"endpoint", "version"}),
		sunset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "qualys_certview_api_sunset_timestamp_seconds",
			Help: "When the CertView API said an API version stops answering (its Sunset header), as a Unix timestamp. Cached from the last response.",
		}, []string{"endpoint", "version"}),
	}
	t.coerced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qualys_certview_api_records_coerced_total",
		Help: "Records the API sent with a value of an unexpected but readable type (a number as a string, one value for a list), kept with the value read as meant, by endpoint. Counted live by the exporter.",
	}, []string{"endpoint"})
	t.listingCalls = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qualys_certview_full_listing_api_calls",
		Help: "Listing calls the full listing in progress (or the last one) has made so far, per API endpoint, across polls and restarts. Set by the poll loop.",
	}, []string{"endpoint"})
	t.listingRecords = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qualys_certview_full_listing_records",
		Help: "Records the full listing in progress (or the last one) has listed so far, per API endpoint, in the id ranges it finished. Set by the poll loop.",
	}, []string{"endpoint"})
	t.listingExpected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qualys_certview_full_listing_expected_api_calls",
		Help: "The fewest listing calls a full listing takes per API endpoint, from the size of the previous snapshot; absent while the size is unknown (the first listing: the API has no count). Set by the poll loop.",
	}, []string{"endpoint"})
	t.valuesCut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qualys_certview_api_values_cut_total",
		Help: "Values of API records cut to the exporter's bound, by field: a string longer than its bound (a subject DN past 1 KiB; every DN longer than 39 bytes is kept as a digest), a SAN list or an asset's tags past their count or size. Real inventories stay within the bounds; a rise means the API sent something it should not. Counted as polls add records.",
	}, []string{"field"})
	t.outOfRange = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qualys_certview_api_values_out_of_range_total",
		Help: "Values of API records outside their domain, by field: a grade CertView does not document (served as grade \"other\"), a category score outside 0 to 100 (dropped). Counted as polls add records.",
	}, []string{"field"})
	t.listingRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "qualys_certview_full_listing_in_progress",
		Help: "1 while a full listing is in progress (the first one, before the exporter is ready, or the daily one beside the incremental polls), else 0. Set by the poll loop.",
	})
	t.shrinkHeld = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "qualys_certview_inventory_shrink_held",
		Help: "1 while a full listing that lost more than poll.max_shrink of the served snapshot's certificates or instances is held, unpublished, until the next full listing confirms it; else 0. The served snapshot stays the one before. Set by the poll loop.",
	})
	t.shrinkRecords = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qualys_certview_inventory_shrink_held_records",
		Help: "Records per API endpoint of the full listing held for its shrink (see qualys_certview_inventory_shrink_held); absent while none is held. Set by the poll loop.",
	}, []string{"endpoint"})
	t.shrinksHeld = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "qualys_certview_inventory_shrinks_held_total",
		Help: "Full listings held unpublished because they lost more than poll.max_shrink of the served snapshot's certificates or instances. Counted by the poll loop.",
	})
	t.seed()
	return t
}

// Collectors returns the metrics to register.
func (t *Telemetry) Collectors() []prometheus.Collector {
	return []prometheus.Collector{t.requests, t.remaining, t.limit, t.waits, t.skipped, t.polls, t.pollFailures, t.saves,
		t.apiVersion, t.deprecated, t.sunset, t.lastPollKind, t.lastPollCalls, t.lastPollRecords, t.lastFull, t.watermark,
		t.incrementalOff, t.filterIgnored, t.ownerDropped, t.listingCalls, t.listingRecords, t.listingExpected, t.listingRunning, t.coerced,
		t.valuesCut, t.outOfRange,
		t.shrinkHeld, t.shrinkRecords, t.shrinksHeld}
}

// Hooks returns the client hooks that feed the telemetry.
func (t *Telemetry) Hooks() certview.Hooks {
	return certview.Hooks{
		Request: func(e certview.RequestEvent) {
			t.requests.WithLabelValues(e.Endpoint, strconv.Itoa(e.Status)).Inc()
			if e.RateLimit.Remaining >= 0 {
				t.remaining.WithLabelValues(e.Endpoint).Set(float64(e.RateLimit.Remaining))
			}
			if e.RateLimit.Limit > 0 {
				t.limit.WithLabelValues(e.Endpoint).Set(float64(e.RateLimit.Limit))
			}
		},
		Wait: func(e certview.WaitEvent) {
			t.waits.WithLabelValues(e.Endpoint, e.Reason).Add(e.Duration.Seconds())
			t.waitCount.Add(1)
			t.waitedMillis.Add(e.Duration.Milliseconds())
		},
		Skip: func(e certview.SkipEvent) {
			t.skipped.WithLabelValues(e.Endpoint).Inc()
		},
		Coerce: func(e certview.CoerceEvent) {
			t.coerced.WithLabelValues(e.Endpoint).Add(float64(e.Records))
		},
		Version: func(e certview.VersionEvent) {
			// One series per endpoint: the version in use replaces the previous one.
			t.apiVersion.DeletePartialMatch(prometheus.Labels{"endpoint": e.Endpoint})
			t.apiVersion.WithLabelValues(e.Endpoint, e.Version).Set(1)
		},
		Deprecation: func(e certview.DeprecationEvent) {
			t.deprecated.WithLabelValues(e.Endpoint, e.Version).Set(1)
			if !e.Sunset.IsZero() {
				t.sunset.WithLabelValues(e.Endpoint, e.Version).Set(unixSeconds(e.Sunset))
			}
		},
	}
}

// SetConfiguredLimit shows the configured budget until the API's headers say otherwise.
func (t *Telemetry) SetConfiguredLimit(calls int) {
	for _, ep := range []string{certview.EndpointCertificates, certview.EndpointInstances} {
		t.limit.WithLabelValues(ep).Set(float64(calls))
	}
}

// SetIncrementalOff marks the reason incremental polls are off ("" for on).
func (t *Telemetry) SetIncrementalOff(reason string) {
	for _, r := range IncrementalOffReasons {
		t.incrementalOff.WithLabelValues(r).Set(boolValue(r == reason))
	}
}

// SetLastPoll records the kind and the calls and records of the poll just ended.
func (t *Telemetry) SetLastPoll(kind string, stats map[string]certview.ListStats) {
	for _, k := range []string{snapshot.PollFull, snapshot.PollIncremental} {
		t.lastPollKind.WithLabelValues(k).Set(boolValue(k == kind))
	}
	for _, ep := range []string{certview.EndpointCertificates, certview.EndpointInstances} {
		t.lastPollCalls.WithLabelValues(ep).Set(float64(stats[ep].Pages))
		t.lastPollRecords.WithLabelValues(ep).Set(float64(stats[ep].Records))
	}
}

// SetSnapshot shows the snapshot's full-listing time and watermark.
func (t *Telemetry) SetSnapshot(s *snapshot.Snapshot) {
	if !s.FullFinished.IsZero() {
		t.lastFull.Set(unixSeconds(s.FullFinished))
	}
	if !s.Watermark.IsZero() {
		t.watermark.Set(unixSeconds(s.Watermark))
	}
}

// CutValue counts a value of field cut to its bound (snapshot.Options.Cut).
func (t *Telemetry) CutValue(field string) { t.valuesCut.WithLabelValues(field).Inc() }

// OutOfRange counts a value of field outside its domain (snapshot.Options.OutOfRange).
func (t *Telemetry) OutOfRange(field string) { t.outOfRange.WithLabelValues(field).Inc() }

// seed makes the per-endpoint and per-reason series exist from the start.
func (t *Telemetry) seed() {
	for _, f := range snapshot.CutFields {
		t.valuesCut.WithLabelValues(f)
	}
	for _, f := range snapshot.OutOfRangeFields {
		t.outOfRange.WithLabelValues(f)
	}
	for _, r := range []string{"success", "failure"} {
		t.polls.WithLabelValues(r)
		t.saves.WithLabelValues(r)
	}
	for _, ep := range []string{certview.EndpointCertificates, certview.EndpointInstances} {
		t.skipped.WithLabelValues(ep)
		t.coerced.WithLabelValues(ep)
		t.filterIgnored.WithLabelValues(ep)
	}
	// Every reason exists from the start, so that increase() sees the first failure.
	for _, reason := range FailureReasons {
		t.pollFailures.WithLabelValues(reason)
	}
}

// Progress is a point-in-time reading of the listing counters, for the progress log.
type Progress struct {
	Pages, Records, Waits int64
	Waited                time.Duration
}

// Progress reads the listing counters.
func (t *Telemetry) Progress() Progress {
	return Progress{t.pages.Load(), t.records.Load(), t.waitCount.Load(), time.Duration(t.waitedMillis.Load()) * time.Millisecond}
}

// Since is what was counted between start and p.
func (p Progress) Since(start Progress) Progress {
	return Progress{p.Pages - start.Pages, p.Records - start.Records, p.Waits - start.Waits, p.Waited - start.Waited}
}

// CountPage counts a page of n records handed to a snapshot builder.
func (t *Telemetry) CountPage(n int) {
	t.pages.Add(1)
	t.records.Add(int64(n))
}

// PollEnded counts a poll: reason is "" for a success, else one of FailureReasons.
func (t *Telemetry) PollEnded(reason string) {
	if reason == "" {
		t.polls.WithLabelValues("success").Inc()
		return
	}
	t.polls.WithLabelValues("failure").Inc()
	t.pollFailures.WithLabelValues(reason).Inc()
}

// SnapshotSaved counts a write of the snapshot file.
func (t *Telemetry) SnapshotSaved(ok bool) {
	if ok {
		t.saves.WithLabelValues("success").Inc()
	} else {
		t.saves.WithLabelValues("failure").Inc()
	}
}

// SeedOwnerLabels makes the dropped-values series of each owner label exist.
func (t *Telemetry) SeedOwnerLabels(names []string) {
	for _, name := range names {
		t.ownerDropped.WithLabelValues(name)
	}
}

// OwnerValuesDropped counts the values of owner labels a new snapshot left out.
func (t *Telemetry) OwnerValuesDropped(o *snapshot.Owners) {
	for k, n := range o.Dropped {
		t.ownerDropped.WithLabelValues(o.Labels[k]).Add(float64(n))
	}
}

// SetFullListing shows the progress of a full listing in one API: calls and records so
// far, and the calls expected (0: unknown, the series is absent).
func (t *Telemetry) SetFullListing(endpoint string, calls, records, expected int) {
	t.listingRunning.Set(1)
	t.listingCalls.WithLabelValues(endpoint).Set(float64(calls))
	t.listingRecords.WithLabelValues(endpoint).Set(float64(records))
	if expected > 0 {
		t.listingExpected.WithLabelValues(endpoint).Set(float64(expected))
	} else {
		t.listingExpected.DeleteLabelValues(endpoint)
	}
}

// FullListingEnded shows that no full listing is in progress.
func (t *Telemetry) FullListingEnded() { t.listingRunning.Set(0) }

// ShrinkHeld counts a full listing held for its shrink and shows it as held, with the
// certificates and instances it holds.
func (t *Telemetry) ShrinkHeld(certificates, instances int) {
	t.shrinksHeld.Inc()
	t.SetShrinkHeld(true, certificates, instances)
}

// SetShrinkHeld shows whether a shrunk full listing is held, and its records; held false
// removes the records' series.
func (t *Telemetry) SetShrinkHeld(held bool, certificates, instances int) {
	t.shrinkHeld.Set(boolValue(held))
	if !held {
		t.shrinkRecords.Reset()
		return
	}
	t.shrinkRecords.WithLabelValues(certview.EndpointCertificates).Set(float64(certificates))
	t.shrinkRecords.WithLabelValues(certview.EndpointInstances).Set(float64(instances))
}

// FilterIgnored counts an incremental answer that ignored its filter.
func (t *Telemetry) FilterIgnored(endpoint string) { t.filterIgnored.WithLabelValues(endpoint).Inc() }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return certview.UnixSeconds(t) }
