package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error names the key at fault, and its line when known.
type Error struct {
	File string
	Key  string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	atLine       = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decodeError rewords the decoder's errors, one per bad value: each names its key path
// (found in the tree by its line) and the line, like
// `poll.interval: "soon" is not a duration (line 6)`; unknown keys are named as such.
func decodeError(name string, err error, root *yaml.Node) error {
	var te *yaml.TypeError
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	errs := make([]*Error, 0, len(msgs))
	for _, m := range msgs {
		ce := &Error{File: name, Msg: m}
		if g := atLine.FindStringSubmatch(m); g != nil {
			ce.Line, _ = strconv.Atoi(g[1])
			ce.Msg = g[2]
			ce.Key = keyAtLine(root, ce.Line, "")
		}
		ce.Msg = unknownField.ReplaceAllString(ce.Msg, "unknown key $1 (keys are decoded strictly; check the spelling and the indentation)")
		errs = append(errs, ce)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	// Several bad values: one error naming each, under the file's name once.
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = strings.TrimPrefix(e.Error(), name+": ")
	}
	return &Error{File: name, Msg: strings.Join(parts, "; ")}
}

// keyAtLine returns the path (like qualys.instance_filter.filters[0].operator) of the
// first key on a line of the tree under n, or of the value on that line, or "". A key
// and its value in flow style share a line, and the key names the value.
func keyAtLine(n *yaml.Node, line int, prefix string) string {
	if n == nil {
		return ""
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line, prefix); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			name := key.Value
			if key.Kind != yaml.ScalarNode { // `? [a, b]: x` or `? {a: b}`: a key that is no name
				name = "<" + nodeKind(key) + " as a key>"
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			if key.Line == line {
				return path
			}
			if k := keyAtLine(value, line, path); k != "" {
				return k
			}
			if value.Line == line { // a value on a line of its own
				return path
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			path := fmt.Sprintf("%s[%d]", prefix, i)
			if k := keyAtLine(c, line, path); k != "" {
				return k
			}
			if c.Kind == yaml.ScalarNode && c.Line == line {
				return path
			}
		}
	}
	return ""
}

// nodeKind names a node's kind for an error.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// findLine returns the line of a key path in a YAML tree, or of its nearest present
// parent, or 0.
func findLine(n *yaml.Node, path []string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return findLine(n.Content[0], path)
	}
	if len(path) == 0 {
		return n.Line
	}
	if n.Kind != yaml.MappingNode {
		return 0 // the caller names the key that holds this value
	}
	name, index := path[0], -1
	if k := strings.IndexByte(name, '['); k > 0 && strings.HasSuffix(name, "]") {
		if v, err := strconv.Atoi(name[k+1 : len(name)-1]); err == nil {
			name, index = name[:k], v
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			value := n.Content[i+1]
			if index >= 0 { // key[i]: the i-th item of the sequence under key
				if value.Kind != yaml.SequenceNode || index >= len(value.Content) {
					return n.Content[i].Line
				}
				value = value.Content[index]
				if len(path) == 1 {
					return value.Line
				}
			} else if len(path) == 1 {
				return n.Content[i].Line
			}
			if l := findLine(value, path[1:]); l > 0 {
				return l
			}
			return n.Content[i].Line
		}
	}
	return 0
}
