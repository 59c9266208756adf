// Package tunnel carries TCP, unix-socket and UDP services over libp2p
// streams, like kubo's "ipfs p2p listen/forward" or "ssh -L".
//
// A Manager owns every tunnel of one host.Host:
//
//   - A listen tunnel (Manager.Listen) registers a stream handler for a
//     protocol such as "/x/ssh". Each stream a remote peer opens on it is
//     checked against the tunnel's allow list (a refused peer's stream is
//     reset before the target is dialled), then joined to a new connection
//     to the target multiaddr (/ip4|ip6|dns*/…/tcp|udp/PORT or /unix/PATH).
//     With ReportPeerID the remote peer ID and "\n" are written to the
//     target first, as kubo's --report-peer-id does.
//   - A forward tunnel (Manager.Forward) listens on a local multiaddr. Each
//     accepted connection is carried over a new stream to the remote peer's
//     protocol, opened with network.WithAllowLimitedConn so relayed
//     connections are used when the relay allows it.
//
// Data flow of one tunnelled TCP connection (an activeStream): two copy
// directions, local→stream and stream→local. The bytes on the stream are
// exactly the tunnelled bytes (no framing), so warren interoperates with
// kubo in both directions. When one direction reaches EOF it half-closes its
// destination (stream CloseWrite or TCP FIN) and the other direction keeps
// running, so a client that shuts down its write side still receives the
// reply (kubo#7747). The connection ends when both directions are done; any
// error resets both sides at once (stream Reset, TCP close with linger 0).
//
// Memory: an idle connection holds no large buffer. The local→stream
// direction waits for readability in the netpoller (syscall.RawConn) and
// only then takes a 128 KiB pooled buffer, returning it when a read would
// block; the stream→local direction blocks in Read with a 1 KiB buffer and
// switches to a pooled buffer while reads fill it, going back after a short
// read or after a read blocks for 100 ms (a read deadline; streams have no
// readiness API). Each
// connection runs two goroutines per side, started fresh once the stream
// and target are set up so their stacks stay small: about 14 KiB per side
// per idle connection (see TestIdleConnectionMemory).
//
// Hosts: tunnels open one stream per connection, so the host's resource
// manager must allow as many streams per peer and per protocol as
// concurrent tunnelled connections are wanted (go-libp2p's defaults allow
// 64 inbound streams per protocol and peer); streams over the limit are
// reset and counted as failed on the forward side. Every tunnel stream joins
// the resource-manager service ServiceName (ServiceStreamsPerPeer per peer).
//
// Limits: a listen tunnel serves at most MaxConns streams at once (spec, or
// Options.MaxConns, default 1024), one peer at most half of them; a forward
// serves at most MaxConns local clients. Over a cap the stream or client is
// reset and counted (Info.LimitRefused, warren_tunnel_refused_total). Unix
// paths must be absolute and clean and may not lie inside Options.RepoDir
// (symlinks resolved); a forward's unix socket is created 0600. Warnings a
// remote peer can cause are rate-limited (internal/ratelog).
//
// UDP: a /udp/ target or listen address carries datagrams as frames on the
// stream: a 2-byte big-endian payload length followed by the payload
// (0–65535 bytes). A forward opens one stream per client source address;
// either side closes an association after Options.UDPIdleTimeout without
// traffic. A forward keeps at most min(MaxConns, 256) associations, half of
// them per source IP, and bounds the datagrams queued per association (128,
// 256 KiB) and per forward (8 MiB). Datagrams that cannot be queued are
// dropped and counted (Info.DroppedDatagrams).
//
// Persistence: every non-Temp tunnel is written to Options.StatePath (JSON,
// atomic replace, mode 0600) whenever the set of tunnels changes. A new
// Manager loads that file (refused if it is a symlink; decoded strictly) and
// Restore starts the saved tunnels; one that fails, or whose entry has an
// unknown key (it fails closed), stays listed with Info.Error and stays
// saved, unchanged, until closed with CloseTunnels. Manager.Close stops everything but keeps the file.
//
// Counters (bytes, streams opened/refused/failed, active streams) are kept
// per tunnel and per connection and exported to Prometheus when
// Options.Registerer is set, labelled by tunnel protocol and kind.
package tunnel
