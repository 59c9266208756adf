// Package netname is the one definition of a warren network's name: its
// rule and its default. Every package that takes a network name (config,
// msg, gossip, node's DHT prefix) checks it here.
package netname

import "fmt"

// Default is the network of a node that names none.
const Default = "warren"

// MaxLen is the longest network name.
const MaxLen = 64

// Rule says what a network name may be, for error messages.
const Rule = "1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"

// Valid reports whether s follows Rule. A valid name is safe inside a
// protocol ID, a topic string, a DHT prefix, an mDNS service name and a
// Prometheus label.
func Valid(s string) bool { return ValidUpTo(s, MaxLen) }

// ValidUpTo reports whether s follows Rule's characters with at most max
// bytes (gossip's topic names share the rule with a longer limit). It
// does not allocate.
func ValidUpTo(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Check returns an error naming s and Rule unless s is valid.
func Check(s string) error {
	if !Valid(s) {
		return fmt.Errorf("network name %q: expected %s", s, Rule)
	}
	return nil
}
