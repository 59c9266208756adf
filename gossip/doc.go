// Package gossip is warren's broadcast: named topics carried by
// go-libp2p-pubsub's GossipSub router, with rendezvous through the DHT and
// an account of every message it loses.
//
// # What it owns
//
// A Service owns one pubsub.PubSub instance on a host. It speaks GossipSub
// under warren's own protocol IDs ("/warren/<network>/meshsub/1.x.0") and
// namespaces every topic as "/warren/<network>/topic/<name>", so two warren
// networks sharing a host or a DHT never exchange topic traffic, and warren
// never joins a public IPFS gossip mesh. Messages are signed by the author's
// host key and checked on receipt (pubsub's StrictSign policy).
//
// pubsub sees the host through a wrapper that puts every stream it accepts
// or opens in the resource-manager service ServiceName ("warren.gossip")
// first, so the node's per-peer limits for that service (see
// ServiceStreamsPerPeer) apply; a refused stream is reset before pubsub uses
// it and counted (RefusedStreams, warren_gossip_refused_streams_total).
//
// # How data flows
//
// Publish: Service.Publish → Topic.Publish checks the size against
// Options.MaxMessageSize, then, if no peer is subscribed to the topic yet,
// waits (until the caller's deadline, or Options.PublishTimeout) for one to
// appear — through already-connected peers or through rendezvous — and fails
// with ErrNoPeers rather than publishing into an empty mesh. The message is
// signed, passed through the local validator, and flood-published to every
// subscriber of the topic this node is connected to (the router's
// flood-publish option), so those get the first messages even before the
// mesh is grafted. Relays forward along the GossipSub mesh (D=6) and
// recover stragglers with IHAVE/IWANT gossip.
//
// Receive: pubsub reads a message, verifies its signature, runs the topic's
// Validator (Accept/Reject/Ignore), delivers it to each local pubsub
// subscription and relays it to mesh peers. Each Subscription has a small
// pump goroutine that moves messages from pubsub's channel into the
// Subscription's own buffer, converting them to Message; when that buffer is
// full the message is dropped and counted on the Subscription (Dropped) and
// on the topic.
//
// Rendezvous: when Options.Discovery is set (the node passes a
// routing.RoutingDiscovery over its Kademlia DHT), joining a topic advertises
// "floodsub:/warren/<network>/topic/<name>" and, while the topic has fewer
// than GossipSub's Dlo mesh peers, pubsub looks the namespace up every
// second and dials what it finds. A publisher and a subscriber that only
// know a common DHT node therefore find each other.
//
// # Loss accounting
//
// GossipSub drops silently in four places: a peer's outbound queue
// (DropRPC), the validation queue ("validation queue full"/"throttled"), a
// slow subscription (UndeliverableMessage), and oversized RPCs (reported by
// pubsub, and counted, as outbound drops). A RawTracer
// counts every one of them per topic and reason; Topics() and the
// Prometheus metrics expose them. Queue sizes are raised well above
// pubsub's 32-entry defaults (see DefaultOutboundQueueSize and friends for
// the measurements behind the numbers).
//
// # Known limit
//
// A relay forwards only along its mesh, which GossipSub grafts on its
// heartbeat (Options.HeartbeatInterval, default 1 s). A subscriber more than
// one hop from the publisher that joined less than a heartbeat ago can
// miss messages sent in that window: gossip does not replay messages to a
// peer that has since been grafted. TopicInfo.Mesh shows when a node's
// mesh has formed. Direct subscribers of the publisher are not affected
// (flood publishing).
//
// Goroutines: pubsub's own goroutines live on a context the Service cancels
// in Close; the Service's own (one pump per Subscription) are waited for in
// Close.
package gossip
