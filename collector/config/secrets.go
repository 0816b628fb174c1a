package config

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Format hides the value under every verb, %#v and %+v included, and wherever a Secret
// is printed as a field of a struct (a Config printed whole).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// GoString hides the value under %#v.
func (s Secret) GoString() string { return s.String() }

// secretKeys are the keys whose values are secrets.
var secretKeys = []string{"qualys.password", "qualys.client_secret"}

// checkSecretNodes refuses a secret that carries a YAML anchor, or that is an alias: an
// anchored password can be reused under another key, whose errors quote the value (a
// password used as a duration). The error names the key and line, not the value.
func checkSecretNodes(root *yaml.Node, fail func(key, format string, args ...any) error) error {
	for _, key := range secretKeys {
		n := nodeAt(root, strings.Split(key, "."))
		switch {
		case n == nil:
		case n.Anchor != "":
			return fail(key, "must not carry a YAML anchor (&%s): a secret is not reused under another key", n.Anchor)
		case n.Kind == yaml.AliasNode:
			return fail(key, "must not be a YAML alias: write the secret here, or use %s_file", key)
		case n.Kind != yaml.ScalarNode:
			return fail(key, "must be a string, not a %s", nodeKind(n))
		}
	}
	return nil
}

// secretsIn are the secret values a configuration holds, from its tree and, once they
// are resolved, from its files, longest first.
func secretsIn(root *yaml.Node, c *Config) []string {
	var out []string
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= minRedacted {
			out = append(out, v)
		}
	}
	for _, key := range secretKeys {
		if n := nodeAt(root, strings.Split(key, ".")); n != nil && n.Kind == yaml.ScalarNode {
			add(n.Value)
		}
	}
	if c != nil {
		add(string(c.Qualys.Password))
		add(string(c.Qualys.ClientSecret))
	}
	return out
}

// minRedacted is the shortest secret searched for in errors: a shorter one would cut
// ordinary words out of every message.
const minRedacted = 4

// redact removes every secret from a configuration error, whole or as the YAML
// decoder quotes a long value (its first seven characters and "..."). It is the last
// line of defence: no message is meant to quote a secret.
func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	var ce *Error
	if !errors.As(err, &ce) {
		return err
	}
	for _, s := range secrets {
		ce.Msg = strings.ReplaceAll(ce.Msg, s, "<secret>")
		if len(s) > 10 {
			ce.Msg = strings.ReplaceAll(ce.Msg, s[:7]+"...", "<secret>")
		}
	}
	return err
}

// nodeAt returns the value node of a key path in a YAML tree, or nil.
func nodeAt(n *yaml.Node, path []string) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return nodeAt(n.Content[0], path)
	}
	if len(path) == 0 {
		return n
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == path[0] {
			return nodeAt(n.Content[i+1], path[1:])
		}
	}
	return nil
}
