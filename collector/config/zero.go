package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// An unset key takes its default. A key written as 0 either means something (the keys in
// zeroMeans: it is kept, not replaced by the default) or is refused (zeroRefused): it
// would otherwise be silently replaced by the default. poll.full_interval and
// poll.incremental_overlap take 0 too; they are pointers, nil when unset.
var zeroMeans = map[string]func(*Config) *int{
	// No retries of a call after a 5xx, a network error or a broken body.
	"qualys.max_retries": func(c *Config) *int { return &c.Qualys.MaxRetries },
	// No client-side budget: the client keeps to the server's X-RateLimit headers.
	"rate_limit.calls": func(c *Config) *int { return &c.RateLimit.Calls },
	// No RSA/DSA (or EC) key is weak for its size.
	"metrics.weak_rsa_bits": func(c *Config) *int { return &c.Metrics.WeakRSABits },
	"metrics.weak_ec_bits":  func(c *Config) *int { return &c.Metrics.WeakECBits },
}

// zeroRefused are the keys whose 0 has no meaning, with what their default is.
var zeroRefused = []struct {
	key, instead string
	zero         func(*Config) bool
}{
	{"qualys.timeout", "60s", func(c *Config) bool { return c.Qualys.Timeout == 0 }},
	{"qualys.page_size", "200", func(c *Config) bool { return c.Qualys.PageSize == 0 }},
	{"qualys.token_renew_margin", "30m", func(c *Config) bool { return c.Qualys.TokenRenewMargin == 0 }},
	{"qualys.max_pages", "10000", func(c *Config) bool { return c.Qualys.MaxPages == 0 }},
	{"poll.interval", "1h", func(c *Config) bool { return c.Poll.Interval == 0 }},
	{"poll.max_backoff", "4× the interval", func(c *Config) bool { return c.Poll.MaxBackoff == 0 }},
	{"poll.progress_interval", "1m", func(c *Config) bool { return c.Poll.ProgressInterval == 0 }},
	{"poll.stall_timeout", "10m", func(c *Config) bool { return c.Poll.StallTimeout == 0 }},
	{"rate_limit.window", "1h", func(c *Config) bool { return c.RateLimit.Window == 0 }},
	{"rate_limit.concurrency", "2", func(c *Config) bool { return c.RateLimit.Concurrency == 0 }},
}

// explicitZeros records, on a freshly decoded configuration, the keys of zeroMeans
// written as 0, and refuses a 0 under a key of zeroRefused (or an owner label's
// max_values), naming the key and its line.
func (c *Config) explicitZeros(root *yaml.Node, fail func(key, format string, args ...any) error) error {
	for key, field := range zeroMeans {
		if set(root, key) && *field(c) == 0 {
			if c.zeros == nil {
				c.zeros = map[string]bool{}
			}
			c.zeros[key] = true
		}
	}
	for _, z := range zeroRefused {
		if set(root, z.key) && z.zero(c) {
			return fail(z.key, "0 is not a valid value (leave the key out for the default, %s)", z.instead)
		}
	}
	for i, l := range c.Owners.Labels {
		key := fmt.Sprintf("owners.labels[%d].max_values", i)
		if l.MaxValues == 0 && setIn(nodeAt(root, []string{"owners", "labels"}), i, "max_values") {
			return fail(key, "0 is not a valid value (leave the key out for the default, 200)")
		}
	}
	return nil
}

// keepZeros sets the keys written as 0 back to 0 after the defaults: Complete and the
// defaults may run again on a parsed configuration and keep them.
func (c *Config) keepZeros() {
	for key := range c.zeros {
		*zeroMeans[key](c) = 0
	}
}

// set says whether a key path is present in the tree with a value other than null.
func set(root *yaml.Node, key string) bool {
	n := nodeAt(root, strings.Split(key, "."))
	return n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// setIn says whether item i of a sequence of mappings has key, not null.
func setIn(seq *yaml.Node, i int, key string) bool {
	if seq == nil || seq.Kind != yaml.SequenceNode || i >= len(seq.Content) {
		return false
	}
	n := nodeAt(seq.Content[i], []string{key})
	return n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}
