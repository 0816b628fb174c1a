package certview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Liberal decoding. A record is decoded strictly first, straight from the stream. When
// that fails on a value of an unexpected type, the record is read again from its bytes
// and each value is coerced to its field's type where nothing is lost by it: a number
// sent as a numeric string (or a string sent as a number), "true" for true, a single
// value where a list was expected, an integral float for an int, a JSON object sent as
// a string. A value that cannot be coerced is dropped (its field left zero) unless its
// field is tagged `certview:"strict"`: the exporter uses those, and a wrong zero there
// would be a wrong metric. An unreadable strict value refuses its nearest container
// that is not strict (a list element is dropped), or else the whole record, which is
// skipped. Every coerced or dropped value is counted.

// strictTag marks a field whose value must be read, coerced or not.
const strictTag = "strict"

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// coercer walks a record's generic JSON value along its Go type.
type coercer struct {
	n     int    // values coerced or dropped
	first string // the path of the first
}

func (c *coercer) note(path string) {
	if c.n == 0 {
		c.first = path
	}
	c.n++
}

// coerceRecord decodes raw (one record's JSON) into dst, a pointer, coercing as above.
// It returns how many values it coerced or dropped and the path of the first.
func coerceRecord(raw []byte, dst any) (values int, first string, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, "", err
	}
	c := &coercer{}
	out := reflect.ValueOf(dst).Elem()
	nv, err := c.value(out.Type(), v, "", true)
	if err != nil {
		return 0, "", err
	}
	b, err := json.Marshal(nv)
	if err != nil {
		return 0, "", err
	}
	out.SetZero()
	if err := json.Unmarshal(b, dst); err != nil {
		return 0, "", err
	}
	return c.n, c.first, nil
}

// value returns v made fit for t. An unreadable value is an error when strict, and is
// otherwise dropped (nil) and noted.
func (c *coercer) value(t reflect.Type, v any, path string, strict bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	unreadable := func(want string) (any, error) {
		if strict {
			return nil, &fieldError{fmt.Sprintf("%s: %s is not %s", fieldName(path), describeJSON(v), want)}
		}
		c.note(path)
		return nil, nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if fits(t, v) {
			return v, nil
		}
		// A number or a bool may do as its text.
		if s, ok := scalarText(v); ok && fits(t, s) {
			c.note(path)
			return s, nil
		}
		return unreadable("readable as " + t.Name())
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return unreadable("an object")
		}
		for k, fv := range m {
			f, ok := jsonField(t, k)
			if !ok {
				continue
			}
			// Only a strict field can fail: the object fails with it.
			nv, err := c.value(f.Type, fv, join(path, k), f.Tag.Get("certview") == strictTag)
			if err != nil {
				if strict {
					return nil, err
				}
				c.note(path)
				return nil, nil
			}
			m[k] = nv
		}
		return m, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return v, nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			s, isString := v.(string)
			if !isString {
				return unreadable("an object")
			}
			c.note(path)
			m = stringAsObject(s, t.Elem())
		}
		for k, ev := range m {
			// An entry that cannot be read fails a strict map, and is dropped from another.
			nv, err := c.value(t.Elem(), ev, fmt.Sprintf("%s[%s]", path, k), true)
			if err != nil {
				if strict {
					return nil, err
				}
				c.note(fmt.Sprintf("%s[%s]", path, k))
				delete(m, k)
				continue
			}
			m[k] = nv
		}
		return m, nil
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			c.note(path) // one value where a list was expected: a list of one
			arr = []any{v}
		}
		out := arr[:0]
		for i, ev := range arr {
			// An element that cannot be read fails a strict list, and is dropped from another.
			nv, err := c.value(t.Elem(), ev, fmt.Sprintf("%s[%d]", path, i), true)
			if err != nil {
				if strict {
					return nil, err
				}
				c.note(fmt.Sprintf("%s[%d]", path, i))
				continue
			}
			out = append(out, nv)
		}
		return out, nil
	case reflect.String:
		switch x := v.(type) {
		case string:
			return x, nil
		case json.Number, bool:
			s, _ := scalarText(x)
			c.note(path)
			return s, nil
		}
		return unreadable("a string")
	case reflect.Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string, json.Number:
			s, _ := scalarText(x)
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true", "1":
				c.note(path)
				return true, nil
			case "false", "0":
				c.note(path)
				return false, nil
			}
		}
		return unreadable("a boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return c.integer(t, v, path, unreadable)
	}
	// No record has fields of other kinds (floats are OptFloat): a value for one passes
	// as it is, and the strict decode that follows refuses it if it does not fit.
	return v, nil
}

// integer fits v to an integer type: a JSON number or a string holding one, integral
// floats (2048.0, 2.048e3) included, within the type's range. "" is no value.
func (c *coercer) integer(t reflect.Type, v any, path string, unreadable func(string) (any, error)) (any, error) {
	var text string
	coerced := false
	switch x := v.(type) {
	case json.Number:
		text = string(x)
	case string:
		text, coerced = strings.TrimSpace(x), true
		if text == "" {
			c.note(path)
			return nil, nil
		}
	default:
		return unreadable("a number")
	}
	zero := reflect.New(t).Elem()
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return unreadable("a whole number")
		}
		i, coerced = int64(f), true
	}
	if zero.OverflowInt(i) {
		return unreadable("a whole number in range")
	}
	if coerced {
		c.note(path)
	}
	return json.Number(strconv.FormatInt(i, 10)), nil
}

// stringAsObject reads a string sent where an object was expected: a JSON object
// written as a string, or else, for a map of lists of strings (such as
// subjectAlternativeNames), a comma-separated list kept under the key "" (type not
// given); any other string is kept whole under "".
func stringAsObject(s string, elem reflect.Type) map[string]any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) == nil && m != nil && !dec.More() {
		return m
	}
	if elem.Kind() == reflect.Slice && elem.Elem().Kind() == reflect.String {
		var items []any
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				items = append(items, part)
			}
		}
		return map[string]any{"": items}
	}
	return map[string]any{"": s}
}

// fits says whether v decodes into a t (a json.Unmarshaler).
func fits(t reflect.Type, v any) bool {
	b, err := json.Marshal(v)
	return err == nil && json.Unmarshal(b, reflect.New(t).Interface()) == nil
}

// scalarText is a number's or a bool's text, or a string itself.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	case string:
		return x, true
	}
	return "", false
}

// jsonField finds the field of struct type t that the JSON key k decodes into, as
// encoding/json does: the exact name, else one equal under case folding.
func jsonField(t reflect.Type, k string) (reflect.StructField, bool) {
	var folded reflect.StructField
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		if name == k {
			return f, true
		}
		if !found && strings.EqualFold(name, k) {
			folded, found = f, true
		}
	}
	return folded, found
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func fieldName(path string) string {
	if path == "" {
		return "record"
	}
	return path
}

// describeJSON names a JSON value for an error: its kind and, for a scalar, its start.
func describeJSON(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return fmt.Sprintf("%.40q", x)
	}
	s, _ := scalarText(v)
	return fmt.Sprintf("%.40s", s)
}

// recordTee keeps what a json.Decoder reads, so that a record that failed to decode can
// be read again from its bytes. It keeps the bytes from the current record's start on,
// compacting only when the dropped part outgrows the rest, so that the copying stays
// linear in the page's size.
type recordTee struct {
	r    io.Reader
	buf  []byte
	base int64 // stream offset of buf[0]
}

func (t *recordTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// from says that no bytes before stream offset off will be asked for again.
func (t *recordTee) from(off int64) {
	k := off - t.base
	if k <= 0 || k > int64(len(t.buf)) || k < int64(len(t.buf))/2 {
		return
	}
	n := copy(t.buf, t.buf[k:])
	t.buf, t.base = t.buf[:n], off
}

// span returns the bytes between two stream offsets at or after the last from.
func (t *recordTee) span(from, to int64) []byte {
	return t.buf[from-t.base : to-t.base]
}
