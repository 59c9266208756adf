package tunnel

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/promreg"
)

// metrics are the Manager's prometheus collectors, one series per tunnel:
// labels are the tunnel's id (as `warren tunnel ls` shows it), protocol and
// kind, all from local configuration; a tunnel's series go when it closes.
type metrics struct {
	opened   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	failed   *prometheus.CounterVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	active   *prometheus.GaugeVec
	// refusedBy counts every refusal by reason (allow, limit, peer_limit,
	// service, udp_sessions, udp_source).
	refusedBy *prometheus.CounterVec
}

// tunnelMetrics are one tunnel's resolved children, so the data path does
// no label lookups.
type tunnelMetrics struct {
	opened, refused, failed, bytesIn, bytesOut, dropped prometheus.Counter
	active                                              prometheus.Gauge
	refusedBy                                           func(reason string) prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"tunnel", "protocol", "kind"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "tunnel", Name: name, Help: help,
		}, labels)
	}
	m := &metrics{
		opened:   counter("streams_opened_total", "Tunnelled connections established."),
		refused:  counter("streams_refused_total", "Streams refused because the remote peer is not allowed."),
		failed:   counter("streams_failed_total", "Tunnelled connections that could not be established."),
		bytesIn:  counter("bytes_in_total", "Bytes received from remote peers."),
		bytesOut: counter("bytes_out_total", "Bytes sent to remote peers."),
		dropped:  counter("udp_dropped_datagrams_total", "UDP datagrams dropped."),
		refusedBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "tunnel", Name: "refused_total",
			Help: "Streams or clients refused, by reason: allow (not in the allow list), limit (max_conns), peer_limit (a peer's share of max_conns), service (resource manager), udp_sessions, udp_source.",
		}, append(labels, "reason")),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "warren", Subsystem: "tunnel", Name: "active_streams",
			Help: "Tunnelled connections currently open.",
		}, labels),
	}
	if reg == nil {
		return m, nil
	}
	// If another Manager already registered on this registry, share its
	// collectors rather than failing.
	errs := []error{promreg.Register(reg, &m.opened), promreg.Register(reg, &m.active)}
	for _, c := range []**prometheus.CounterVec{&m.refused, &m.failed, &m.bytesIn, &m.bytesOut, &m.dropped, &m.refusedBy} {
		errs = append(errs, promreg.Register(reg, c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tunnel: register metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) forTunnel(id uint64, proto, kind string) tunnelMetrics {
	l := []string{strconv.FormatUint(id, 10), proto, kind}
	return tunnelMetrics{
		opened:   m.opened.WithLabelValues(l...),
		refused:  m.refused.WithLabelValues(l...),
		failed:   m.failed.WithLabelValues(l...),
		bytesIn:  m.bytesIn.WithLabelValues(l...),
		bytesOut: m.bytesOut.WithLabelValues(l...),
		dropped:  m.dropped.WithLabelValues(l...),
		active:   m.active.WithLabelValues(l...),
		refusedBy: func(reason string) prometheus.Counter {
			return m.refusedBy.WithLabelValues(append(l[:3:3], reason)...)
		},
	}
}

// forget removes a closed tunnel's series.
func (m *metrics) forget(id uint64, proto, kind string) {
	l := []string{strconv.FormatUint(id, 10), proto, kind}
	for _, v := range []*prometheus.CounterVec{m.opened, m.refused, m.failed, m.bytesIn, m.bytesOut, m.dropped} {
		v.DeleteLabelValues(l...)
	}
	m.active.DeleteLabelValues(l...)
	m.refusedBy.DeletePartialMatch(prometheus.Labels{"tunnel": l[0], "protocol": l[1], "kind": l[2]})
}
