// Package promreg registers Prometheus collectors that several owners of one
// registry may create: the second owner gets the first one's collector.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers *c with reg. If a collector of the same type is
// already registered under its name, *c is replaced by that one, so that,
// for example, two API servers of one node share their counters.
func Register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return err
}
