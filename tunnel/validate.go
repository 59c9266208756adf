package tunnel

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/warren-p2p/warren/config"

	"github.com/warren-p2p/warren/internal/errkind"
)

// maxProtocolLen keeps names well inside multistream-select's token limit.
const maxProtocolLen = 512

// endpoint is a parsed local address: what to dial or listen on.
type endpoint struct {
	maddr     ma.Multiaddr
	network   string // for net.Dial / net.Listen: tcp4, udp6, unix, ...
	address   string // host:port or path
	transport string // TransportTCP, TransportUDP or TransportUnix
}

// validateProtocol enforces kubo's rule: names live under /x/ unless the
// caller explicitly allows custom protocols.
func validateProtocol(p protocol.ID, allowCustom bool) (protocol.ID, error) {
	s := string(p)
	switch {
	case s == "":
		return "", invalidf("tunnel: protocol is empty: expected a name like /x/my-service")
	case len(s) > maxProtocolLen:
		return "", invalidf("tunnel: protocol %.40q...: longer than %d bytes", s, maxProtocolLen)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", invalidf("tunnel: protocol %q: must not contain whitespace or control characters", s)
	case !strings.HasPrefix(s, "/x/") && !allowCustom:
		return "", invalidf("tunnel: protocol %q: names must start with /x/ (set allow_custom_protocol, --allow-custom-protocol, to use another name)", s)
	case !strings.HasPrefix(s, "/"):
		return "", invalidf("tunnel: protocol %q: must start with /", s)
	case s == "/x/" || s == "/":
		return "", invalidf("tunnel: protocol %q: name is empty after the prefix, expected e.g. /x/my-service", s)
	}
	return p, nil
}

// The address forms a listen tunnel's target and a forward's listen address
// accept, as error messages name them.
const (
	TargetForms = "/ip4|ip6|dns|dns4|dns6/<host>/tcp|udp/<port> or /unix/<path>"
	ListenForms = "/ip4|ip6/<ip>/tcp|udp/<port> or /unix/<path>"
)

// parseEndpoint checks a local address and works out how to dial or listen
// on it. what names the input in errors. Targets (dial) accept dns names
// and need a non-zero port; listen addresses accept IP addresses only and
// port 0.
func parseEndpoint(what string, m ma.Multiaddr, listen bool) (endpoint, error) {
	expected := TargetForms
	if listen {
		expected = ListenForms
	}
	s := m.String()
	fail := func(format string, args ...any) (endpoint, error) {
		return endpoint{}, invalidf("tunnel: %s %q: %s (expected %s)", what, s, fmt.Sprintf(format, args...), expected)
	}
	if len(m) == 0 {
		return fail("is empty")
	}
	comps := []ma.Component(m)
	if len(comps) == 1 && comps[0].Protocol().Code == ma.P_UNIX {
		network, addr, err := manet.DialArgs(m)
		if err != nil {
			return fail("%v", err)
		}
		return endpoint{maddr: m, network: network, address: addr, transport: TransportUnix}, nil
	}
	i := 0
	if len(comps) > 0 && comps[0].Protocol().Code == ma.P_IP6ZONE {
		i++
	}
	if len(comps) != i+2 {
		return fail("has %d components", len(comps))
	}
	switch code := comps[i].Protocol().Code; code {
	case ma.P_IP4, ma.P_IP6:
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
		if listen {
			return fail("cannot listen on a DNS name")
		}
	default:
		return fail("unsupported address protocol /%s", comps[i].Protocol().Name)
	}
	if i == 1 && comps[i].Protocol().Code != ma.P_IP6 {
		return fail("an ip6zone must be followed by /ip6")
	}
	var transport string
	switch comps[i+1].Protocol().Code {
	case ma.P_TCP:
		transport = TransportTCP
	case ma.P_UDP:
		transport = TransportUDP
	default:
		return fail("unsupported transport /%s", comps[i+1].Protocol().Name)
	}
	port, err := strconv.ParseUint(comps[i+1].Value(), 10, 16)
	if err != nil {
		return fail("bad port %q", comps[i+1].Value())
	}
	if port == 0 && !listen {
		return fail("port must be non-zero")
	}
	network, addr, err := manet.DialArgs(m)
	if err != nil {
		return fail("%v", err)
	}
	return endpoint{maddr: m, network: network, address: addr, transport: transport}, nil
}

// parsePeer reads a saved forward's peer: a peer ID or a multiaddr ending
// in /p2p/<peer-id> (config.ParsePeer).
func parsePeer(s string) (peer.ID, []ma.Multiaddr, error) {
	ai, err := config.ParsePeer(s)
	if err != nil {
		return "", nil, invalidf("tunnel: peer: %w", err)
	}
	return ai.ID, ai.Addrs, nil
}

// p2pAddr is /p2p/<id>, the address Info shows for a peer (nil if id is
// not a valid peer ID).
func p2pAddr(id peer.ID) ma.Multiaddr {
	m, err := ma.NewMultiaddr("/p2p/" + id.String())
	if err != nil {
		return nil
	}
	return m
}

// netMultiaddr is a as a multiaddr (an IP address and TCP or UDP port, or
// a unix socket's path), or nil when it has none.
func netMultiaddr(a net.Addr) ma.Multiaddr {
	m, err := manet.FromNetAddr(a)
	if err != nil {
		return nil
	}
	return m
}

// ErrInvalid marks an error caused by a bad tunnel spec (name, address,
// peer, filter); ErrExists one caused by a tunnel that already holds the
// protocol or address. Anything else from Listen or Forward is the node's
// failure (state file, network).
var (
	ErrInvalid = errors.New("invalid tunnel spec")
	ErrExists  = errors.New("tunnel already exists")
)

func invalidf(format string, args ...any) error { return errkind.Errorf(ErrInvalid, format, args...) }

func existsf(format string, args ...any) error { return errkind.Errorf(ErrExists, format, args...) }

// checkUnixPath enforces the rules for a /unix/ endpoint (what names it in
// errors): the path is absolute and clean (no ".", ".." or empty
// components, so what is checked is what is dialled), and it is not inside
// the repo directory, directly or through a symlink: a tunnel to the
// daemon's api.sock would give remote peers the whole control API, and a
// forward socket there could shadow it. Other transports pass.
func (m *Manager) checkUnixPath(what string, e endpoint) error {
	if e.transport != TransportUnix {
		return nil
	}
	p := e.address
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return invalidf("tunnel: %s %q: a unix socket path must be absolute and clean (no \".\", \"..\" or empty components), e.g. /run/app.sock", what, e.maddr)
	}
	if m.repoDir == "" {
		return nil
	}
	if r := resolvePath(p); within(r, m.repoDir) {
		return invalidf("tunnel: %s %q: unix sockets inside the node's repo directory %s (resolved: %s) are refused: it holds the control API socket", what, e.maddr, m.repoDir, r)
	}
	return nil
}

// resolvePath returns the absolute clean path p with every symlink of its
// longest existing prefix resolved: p itself if it exists, else its parent,
// and so on (a socket path usually does not exist yet when a forward binds
// it).
func resolvePath(p string) string {
	var rest []string
	for cur := filepath.Clean(p); ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return filepath.Clean(p)
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// within reports whether path is dir or inside it (both resolved).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
