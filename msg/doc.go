// Package msg implements warren's typed direct messages between peers:
// a wire codec, per-peer prioritised send queues, a fan-out dispatcher with
// explicit overflow policies, and request/response. It works over any
// host.Host.
//
// # Model
//
// A Message has a Type (1-64 characters of [A-Za-z0-9._/-], '_' allowed), a
// 16-byte ID (unique per sender: a random per-service prefix plus a counter,
// or chosen by the caller for idempotent retries), the sender's peer ID (taken
// from the stream, never from the payload), a payload and timestamps.
//
// # Wire
//
// Messages travel over protocol /warren/<network>/msg/1.0.0, so services of
// different networks never exchange messages. Each frame is an unsigned
// varint length followed by a hand-encoded protobuf envelope (see codec.go).
// The length is checked against MaxMessageSize (+ a small envelope allowance)
// before any buffer is allocated; a longer frame resets the stream. A
// well-framed but malformed envelope is skipped. Both are counted in
// Stats.BadFrames and logged (rate-limited, like every warning a remote peer
// can cause).
//
// A frame's buffer grows only as its bytes arrive: the first 64 KiB go to
// the stream's reused buffer, then the frame moves to a buffer of its own
// that doubles, up to the declared length, each time it is full. Every byte
// of those own buffers is first reserved on the stream's resource-manager
// scope, whose service is ServiceName; ResourceLimits gives the limits to
// configure (memory per peer and for all peers, streams per peer). A refused
// reservation resets the stream (Stats.RefusedMemory), and so does a stream
// the resource manager refuses to the service (Stats.RefusedStreams). A frame
// that outgrew the reused buffer must arrive in time (Options.FrameGrace plus
// its length at Options.FrameMinRate), or its stream is reset
// (Stats.SlowFrames): withheld bytes cannot keep the memory forever. The
// payload of a request whose handler runs is accounted apart, in budgets of
// the service's own (4 maximal frames per peer, 32 over all peers) that
// outlive the streams; the reader waits for room in them, as for a handler
// slot.
//
// # Sending
//
// Send → per-peer outPeer → one long-lived stream per peer and direction.
// The first Send to a peer opens the stream synchronously (concurrent opens
// are coalesced with singleflight), so an unreachable peer, or one not
// running this network, is an error of that Send. Send encodes the message
// into a pooled buffer and appends it to one of three bounded queues (High,
// Normal, Low; Options.SendQueue each); when the queue is full Send waits
// until ctx ends. A writer goroutine per peer takes frames by weighted round
// robin (High:Normal:Low = 8:4:1 per round, so Low is never starved), copies
// them into a 64 KiB buffer and writes it when full or when the queues are
// empty: many messages per stream write.
//
// When a stream fails (write error, connection closed), every frame still
// queued or buffered is counted as failed (TypeStats.SendFailed, PeerStats),
// logged, and the next Send to that peer returns an error wrapping
// ErrMessagesLost; the Send after that reopens the stream. Pending Requests
// to that peer fail at once.
//
// # Receiving and dispatch
//
// One reader goroutine per inbound stream decodes frames and dispatches them:
// a plain message goes to every Subscription of its type (fan-out, one shared
// read-only *Message), a request to the type's Handler, a response to the
// waiting Request. Each Subscription has a bounded ring buffer and a Policy:
//
//   - Block: the reader waits for room. The sender's stream stalls (yamux
//     flow control), its send queue fills and its Send blocks: lossless end
//     to end. One slow Block subscriber stalls everything from that peer.
//   - DropOldest / DropNewest: the evicted or rejected message is counted per
//     subscription and per type.
//
// The buffer is bounded in messages (SubscribeOptions.Buffer) and in payload
// bytes (SubscribeOptions.MaxBytes, default Options.SubscribeMaxBytes); the
// policy applies to whichever is reached first. A message always fits an
// empty buffer.
//
// Dedup subscriptions discard a (sender, id) they already delivered or still
// hold; a message lost to the overflow policy is forgotten, so a retry gets
// through. Messages of a type with no subscriber (or requests with no
// handler) are counted as Unhandled. Nothing is dropped without a counter.
//
// # Request/response
//
// Request sends an envelope flagged as request with a correlation id and the
// time left, on the same per-peer streams (High priority). The remote runs the
// Handler in its own goroutine once it has one of the requesting peer's
// Options.MaxHandlersPerPeer slots and one of the service's
// Options.MaxConcurrentHandlers (semaphores; while they are taken, the reader
// waits), and replies flagged as response, or response+error carrying the
// error text. A request of a type with no handler takes no slot: the reader
// answers "no handler for type X" at once if the requester's send queue has
// room, and drops the reply otherwise. A handler's reply waits at most
// Options.ReplyTimeout for room; a reply not sent is counted in
// Stats.FailedReplies. Replies only use an existing connection, relayed
// (limited) or not, as the request came: a requester that left is not
// dialled. Handler panics are recovered and returned as errors.
//
// # Relayed peers
//
// Without Options.Reach the stream to a peer is opened as libp2p does by
// default: never on a limited (relayed) connection; libp2p waits, within
// OpenTimeout, for a direct one. With Reach (warren's node.Reach) the first
// Send or Request to a peer calls it, which finds the peer, waits for hole
// punching and refuses a relay too small to carry messages (a public relay's
// 128 KiB) with an error naming the peer, what was tried and the fix; a relay
// it accepts (a relay of your own) then carries the stream.
//
// # Observability
//
// Stats returns every counter for a JSON API. With Options.Registerer, a
// collector exports the same atomics at scrape time (so metrics cost nothing
// per message) plus a request latency histogram. Type labels exist only for
// known types — those with a local subscriber or handler or sent locally;
// everything else is counted as type OtherType (including this node's "no
// handler" replies to requests of such types), so remote peers cannot create
// series. Each open subscription's drops are a series of their own, labelled
// by its local id and removed when it closes.
//
// # Peers that leave
//
// When the last connection to a peer closes, its outbound stream and the
// requests waiting for it fail, and its inbound state ends with its streams
// and handlers. Only an unreported loss of this node's own messages is kept
// for the next Send to that peer, for at most 1024 peers.
//
// # Lifecycle
//
// Close removes the stream handler, resets all streams, closes subscriptions,
// fails pending requests and waits for every goroutine it started.
package msg
