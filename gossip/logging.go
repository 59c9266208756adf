package gossip

import (
	"context"
	"log/slog"

	"github.com/warren-p2p/warren/internal/ratelog"
)

// rateHandler is the slog.Handler given to pubsub. pubsub logs some remote
// peers' doings at Info and Warn ("new stream for unknown peer", bogus peer
// records, full queues), as often as a peer makes them happen; records at
// Info and above go through a ratelog.Logger, keyed by pubsub's (constant)
// message, so each kind is written once per window and then summarised.
// Debug records pass straight through.
type rateHandler struct {
	next  slog.Handler
	rlog  *ratelog.Logger
	attrs []any // from WithAttrs, prepended to each rate-limited record
}

func newRateHandler(log *slog.Logger, rlog *ratelog.Logger) *rateHandler {
	return &rateHandler{next: log.Handler(), rlog: rlog}
}

func (h *rateHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return h.next.Handle(ctx, r)
	}
	args := make([]any, 0, len(h.attrs)+r.NumAttrs())
	args = append(args, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a)
		return true
	})
	h.rlog.Log(r.Level, "pubsub: "+r.Message, args...)
	return nil
}

func (h *rateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append([]any{}, h.attrs...)
	for _, a := range as {
		c.attrs = append(c.attrs, a)
	}
	return &c
}

// WithGroup is passed to the next handler only: rate-limited records lose
// the group, which pubsub does not use.
func (h *rateHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
