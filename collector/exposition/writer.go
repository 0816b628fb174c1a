package exposition

import (
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// lineWriter appends exposition lines to a buffer and writes it out in large chunks.
type lineWriter struct {
	buf []byte
	w   io.Writer
	err error
}

const flushAt = 192 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	l.flushIfFull()
	return len(p), nil
}

func (l *lineWriter) flushIfFull() {
	if len(l.buf) >= flushAt {
		l.flush()
	}
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 && l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
}

func (l *lineWriter) raw(s string)   { l.buf = append(l.buf, s...) }
func (l *lineWriter) bytes(b []byte) { l.buf = append(l.buf, b...) }

// instanceLabels opens the label set of a per-instance series, leaving the certhash
// value's quote open: `{instance_id="1",certhash="abc`.
func (l *lineWriter) instanceLabels(in *snapshot.Instance) {
	l.raw(`{instance_id="`)
	l.int(in.ID)
	l.raw(`",certhash="`)
	l.escaped(in.CertHash)
}

// family writes the HELP and TYPE lines of a gauge.
func (l *lineWriter) family(f family) { l.typedFamily(f, "gauge") }

// typedFamily writes the HELP and TYPE lines.
func (l *lineWriter) typedFamily(f family, typ string) {
	l.flushIfFull()
	l.raw("# HELP ")
	l.raw(f.name)
	l.buf = append(l.buf, ' ')
	l.escapedHelp(f.help)
	l.raw("\n# TYPE ")
	l.raw(f.name)
	l.buf = append(l.buf, ' ')
	l.raw(typ)
	l.buf = append(l.buf, '\n')
}

// single writes a family of one unlabelled gauge.
func (l *lineWriter) single(f family, v float64) {
	l.family(f)
	l.raw(f.name)
	l.float(v)
}

func (l *lineWriter) label1(name, value string) {
	l.buf = append(l.buf, '{')
	l.raw(name)
	l.raw(`="`)
	l.escaped(value)
	l.raw(`"}`)
}

// labelStart opens label number n of a set: `{name="` or `,name="`.
func (l *lineWriter) labelStart(n int, name string) {
	if n == 0 {
		l.buf = append(l.buf, '{')
	} else {
		l.buf = append(l.buf, ',')
	}
	l.raw(name)
	l.raw(`="`)
}

func (l *lineWriter) int(v int64) { l.buf = strconv.AppendInt(l.buf, v, 10) }

// float writes " value\n" as the text format wants it.
func (l *lineWriter) float(v float64) {
	l.buf = append(l.buf, ' ')
	switch {
	case math.IsInf(v, 1):
		l.raw("+Inf")
	case math.IsInf(v, -1):
		l.raw("-Inf")
	case math.IsNaN(v):
		l.raw("NaN")
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		l.buf = strconv.AppendInt(l.buf, int64(v), 10)
	default:
		l.buf = strconv.AppendFloat(l.buf, v, 'g', -1, 64)
	}
	l.buf = append(l.buf, '\n')
}

// escaped writes a label value with backslash, double quote and newline escaped. Most
// values need nothing; two IndexByte scans (vectorised) tell. Snapshot label values hold
// no newline (label() replaced control characters), but escaping stays complete.
func (l *lineWriter) escaped(s string) {
	if strings.IndexByte(s, '"') < 0 && strings.IndexByte(s, '\\') < 0 && strings.IndexByte(s, '\n') < 0 {
		l.buf = append(l.buf, s...)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			l.raw(`\\`)
		case '"':
			l.raw(`\"`)
		case '\n':
			l.raw(`\n`)
		default:
			l.buf = append(l.buf, c)
		}
	}
}

// escapedHelp writes HELP text with backslash and newline escaped.
func (l *lineWriter) escapedHelp(s string) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "\n", `\n`)
	l.buf = append(l.buf, s...)
}
