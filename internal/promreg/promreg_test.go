package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSecondRegistrationSharesTheFirst(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"})
	b := prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"})
	if err := Register(reg, &a); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, &b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the second registration did not get the first collector")
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"})
	if err := Register(reg, &g); err == nil {
		t.Fatal("a different collector under a taken name was accepted")
	}
}
