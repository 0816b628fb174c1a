package certview

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Dates past 2262 and before 1678, where UnixNano overflows, decode to the date given,
// and epoch values past what time arithmetic holds saturate instead of wrapping.
func TestTimeIsTotal(t *testing.T) {
	noExpiry := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		json string
		want time.Time
	}{
		{`253402214400000`, noExpiry},                                        // RFC 5280's 99991231235959Z, as the API's milliseconds
		{`"253402214400000"`, noExpiry},                                      // the same as a numeric string
		{`"9999-12-31T00:00:00Z"`, noExpiry},                                 // and as ISO 8601
		{`-9999999999999`, time.Date(1653, 2, 10, 6, 13, 20, 1e6, time.UTC)}, // before 1678
		{`9223372036854775807`, MaxEpochTime},                                // int64-max milliseconds
		{`9223372036854775808`, MaxEpochTime},                                // one past it
		{`1e300`, MaxEpochTime},                                              // a float far past it
		{`1e400`, MaxEpochTime},                                              // past float64 itself
		{`"1e400"`, MaxEpochTime},                                            // and as a string
		{`-9223372036854775808`, MinEpochTime},                               // int64-min milliseconds
		{`-1e400`, MinEpochTime},                                             // past float64 itself
		{`1893456000.5`, time.Unix(1893456000, 5e8).UTC()},
	} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(tc.json), &ts); err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		if !ts.Equal(tc.want) {
			t.Errorf("%s decoded as %v, want %v", tc.json, ts.Time, tc.want)
		}
		// It writes back and reads again as the same time.
		b, err := json.Marshal(ts)
		var again Timestamp
		if err != nil || json.Unmarshal(b, &again) != nil || !again.Equal(ts.Time) {
			t.Errorf("%s: written as %s (%v), read back as %v", tc.json, b, err, again.Time)
		}
	}
	if !MaxEpochTime.After(noExpiry) || !MinEpochTime.Before(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("saturation bounds %v and %v", MinEpochTime, MaxEpochTime)
	}
	// What is not a time at all is an error, not some time.
	for _, bad := range []string{`"NaN"`, `"Inf"`, `"-Infinity"`, `true`, `"soon"`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("%s decoded as %v", bad, ts.Time)
		}
	}
	if !EpochTime(math.NaN()).IsZero() || !EpochTime(math.Inf(1)).Equal(MaxEpochTime) || !EpochTime(math.Inf(-1)).Equal(MinEpochTime) {
		t.Error("EpochTime of NaN or an infinity")
	}
}

// UnixSeconds is exact where UnixNano would overflow.
func TestUnixSeconds(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want float64
	}{
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 253402214400},
		{time.Date(1653, 2, 10, 6, 13, 20, 1e6, time.UTC), -9999999999.999},
		{time.Unix(1893456000, 5e8), 1893456000.5},
		{time.Unix(-2, 25e7), -1.75},
		{MaxEpochTime, 9223372036854775.807},
		{MinEpochTime, -9223372036854775.808},
	} {
		if got := UnixSeconds(tc.t); math.Abs(got-tc.want) > math.Abs(tc.want)*1e-15+1e-9 {
			t.Errorf("UnixSeconds(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

// A certificate valid until 9999-12-31 keeps that date through the listing.
func TestNoExpiryCertificate(t *testing.T) {
	recs, _, err := decodePage[Certificate](strings.NewReader(`[{"id": 1, "certhash": "a", "validTo": 253402214400000},
		{"id": 2, "certhash": "b", "validTo": 9223372036854775807}]`), 0, func(i int, err error) { t.Fatalf("skipped %d: %v", i, err) })
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, err %v", len(recs), err)
	}
	if !recs[0].ValidTo.Equal(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)) || UnixSeconds(recs[0].ValidTo.Time) != 253402214400 {
		t.Errorf("validTo %v", recs[0].ValidTo)
	}
	if !recs[1].ValidTo.After(epoch) {
		t.Errorf("int64-max validTo %v is in the past", recs[1].ValidTo)
	}
}

// A Deprecation date past what time.Unix holds saturates.
func TestDeprecationDateSaturates(t *testing.T) {
	h := http.Header{}
	h.Set("Deprecation", "@9223372036854775807")
	d, problems := ParseDeprecation(h)
	if len(problems) != 0 || !d.Deprecated || !d.Since.Equal(MaxEpochTime) {
		t.Fatalf("deprecation %+v, problems %v", d, problems)
	}
	h.Set("Deprecation", "@-9223372036854775808")
	if d, _ := ParseDeprecation(h); !d.Since.Equal(MinEpochTime) {
		t.Fatalf("deprecation %+v", d)
	}
}
