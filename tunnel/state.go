package tunnel

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren/config"
)

const stateVersion = 1

// stateFile is the JSON document at Options.StatePath.
type stateFile struct {
	Version int           `json:"version"`
	Tunnels []savedTunnel `json:"tunnels"`
}

// savedTunnel is one persistent tunnel: exactly one of Listen or Forward is
// set, matching Kind. A forward's ListenAddr is the address it was bound to,
// so a port-0 forward comes back on the same port.
type savedTunnel struct {
	Kind    Kind          `json:"kind"`
	Listen  *savedListen  `json:"listen,omitempty"`
	Forward *savedForward `json:"forward,omitempty"`

	// raw is the entry as read when it has a key this version does not
	// know (bad says which): it fails closed, is not started, and is saved
	// back exactly as read.
	raw json.RawMessage
	bad error
}

// savedTunnelJSON is savedTunnel's JSON form (no methods, so no recursion).
type savedTunnelJSON struct {
	Kind    Kind          `json:"kind"`
	Listen  *savedListen  `json:"listen,omitempty"`
	Forward *savedForward `json:"forward,omitempty"`
}

// MarshalJSON writes an entry kept as read unchanged.
func (st savedTunnel) MarshalJSON() ([]byte, error) {
	if st.raw != nil {
		return st.raw, nil
	}
	return json.Marshal(savedTunnelJSON{Kind: st.Kind, Listen: st.Listen, Forward: st.Forward})
}

// savedListen is a ListenSpec as stored. Its protocol, target and
// allow-list entries stay text (the outer fields hide ListenSpec's in JSON),
// so an entry that does not parse fails that tunnel's restore, listed with
// the error, instead of failing to decode the whole file and the daemon's
// start. The fields before ListenSpec and after it keep the JSON keys in
// the order earlier versions wrote them (testdata/tunnels-v1.json).
type savedListen struct {
	Protocol string `json:"protocol"`
	Target   string `json:"target"`
	ListenSpec
	Allow []string `json:"allow,omitempty"`
}

func newSavedListen(spec ListenSpec) *savedListen {
	s := &savedListen{Protocol: string(spec.Protocol), Target: spec.Target.String(), ListenSpec: spec}
	s.ListenSpec.Protocol, s.ListenSpec.Target, s.ListenSpec.Allow = "", nil, nil
	for _, id := range spec.Allow {
		s.Allow = append(s.Allow, id.String())
	}
	return s
}

// spec is the ListenSpec saved; a target that is not a multiaddr or an
// allow entry that is not a peer ID is an error naming it.
func (s *savedListen) spec() (ListenSpec, error) {
	spec := s.ListenSpec
	spec.Protocol, spec.Allow = protocol.ID(s.Protocol), nil
	target, err := parseSavedAddr(s.Target)
	if err != nil {
		return spec, invalidf("tunnel: saved listener %q: target %q is not a multiaddr: %v (expected %s)", s.Protocol, s.Target, err, TargetForms)
	}
	spec.Target = target
	for i, a := range s.Allow {
		id, err := peer.Decode(a)
		if err != nil {
			return spec, invalidf("tunnel: saved listener %q: allow[%d] %q is not a peer ID: %v", spec.Protocol, i, a, err)
		}
		spec.Allow = append(spec.Allow, id)
	}
	return spec, nil
}

// savedForward is a ForwardSpec as stored. Its protocol, listen address,
// peer and addresses stay text (the outer fields hide ForwardSpec's in
// JSON): the peer is a peer ID, or, as earlier versions saved it, a
// multiaddr ending in /p2p/<peer-id>; an entry that does not parse fails
// that tunnel's restore, as for listeners. The JSON keys keep the order
// earlier versions wrote, as for savedListen.
type savedForward struct {
	Protocol   string `json:"protocol"`
	ListenAddr string `json:"listen_address"`
	ForwardSpec
	Peer  string   `json:"peer"`
	Addrs []string `json:"addrs,omitempty"`
}

func newSavedForward(spec ForwardSpec) *savedForward {
	s := &savedForward{Protocol: string(spec.Protocol), ListenAddr: spec.ListenAddr.String(), ForwardSpec: spec, Peer: spec.Peer.String()}
	s.ForwardSpec.Protocol, s.ForwardSpec.ListenAddr, s.ForwardSpec.Peer, s.ForwardSpec.Addrs = "", nil, "", nil
	for _, a := range spec.Addrs {
		s.Addrs = append(s.Addrs, a.String())
	}
	return s
}

// spec is the ForwardSpec saved.
func (s *savedForward) spec() (ForwardSpec, error) {
	spec := s.ForwardSpec
	spec.Protocol = protocol.ID(s.Protocol)
	listen, err := parseSavedAddr(s.ListenAddr)
	if err != nil {
		return spec, invalidf("tunnel: saved forward %q: listen_address %q is not a multiaddr: %v (expected %s)", s.Protocol, s.ListenAddr, err, ListenForms)
	}
	spec.ListenAddr = listen
	id, addrs, err := parsePeer(s.Peer)
	if err != nil {
		return spec, err
	}
	spec.Peer, spec.Addrs = id, addrs
	for i, a := range s.Addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return spec, invalidf("tunnel: saved forward %q: addrs[%d] %q is not a multiaddr: %v", spec.Protocol, i, a, err)
		}
		spec.Addrs = append(spec.Addrs, m)
	}
	return spec, nil
}

// parseSavedAddr reads a saved address; "" is nil, which validation
// refuses as empty.
func parseSavedAddr(s string) (ma.Multiaddr, error) {
	if s == "" {
		return nil, nil
	}
	return ma.NewMultiaddr(s)
}

// maxStateSize bounds the state file read at start.
const maxStateSize = 16 << 20

// loadState reads the state file. A missing file is no tunnels; a file that
// is a symlink (or not a regular file), larger than maxStateSize, or not a
// valid state document is an error (the daemon does not start; the file is
// never overwritten).
func loadState(path string) ([]savedTunnel, error) {
	data, err := readStateFile(path)
	if err != nil || data == nil {
		return nil, err
	}
	st, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("tunnel: state file %q: %w", path, err)
	}
	return st, nil
}

// readStateFile reads path without following a symlink (config's no-follow
// reader: O_NOFOLLOW|O_NONBLOCK, regular files only, at most maxStateSize),
// so a link or FIFO planted as tunnels.json is refused, never read or
// waited on. A missing file is no state.
func readStateFile(path string) ([]byte, error) {
	data, err := config.ReadFileNoFollow(path, maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tunnel: read state file %q: %w", path, err)
	}
	return data, nil
}

// parseState decodes a state document strictly: unknown top-level keys and
// data after the document are errors. Each tunnel entry is decoded strictly
// too, but an entry with an unknown key fails only that tunnel, closed: it
// is returned with bad set, listed with the error and not started (a
// misspelt "allow" must not restore a listener open to every peer).
func parseState(data []byte) ([]savedTunnel, error) {
	var doc struct {
		Version int               `json:"version"`
		Tunnels []json.RawMessage `json:"tunnels"`
	}
	if err := decodeStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid (fix or remove it): %w", err)
	}
	if doc.Version != stateVersion {
		return nil, fmt.Errorf("has version %d, expected %d", doc.Version, stateVersion)
	}
	out := make([]savedTunnel, 0, len(doc.Tunnels))
	for i, raw := range doc.Tunnels {
		var e savedTunnelJSON
		strictErr := decodeStrict(raw, &e)
		if strictErr != nil {
			// Only an unknown key separates a strict from a lenient
			// decode; anything else fails the whole file as before.
			e = savedTunnelJSON{}
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("tunnels[%d] is not valid (fix or remove it): %w", i, err)
			}
		}
		ok := (e.Kind == KindListen && e.Listen != nil && e.Forward == nil) ||
			(e.Kind == KindForward && e.Forward != nil && e.Listen == nil)
		if !ok {
			return nil, fmt.Errorf("tunnels[%d]: expected kind %q with a listen spec or kind %q with a forward spec, got kind %q",
				i, KindListen, KindForward, e.Kind)
		}
		st := savedTunnel{Kind: e.Kind, Listen: e.Listen, Forward: e.Forward}
		if strictErr != nil {
			st.raw = slices.Clone(raw)
			st.bad = invalidf("tunnel: saved tunnels[%d]: %s: not started (an unknown key may be a misspelt setting such as allow; fix the file and restart, or close the tunnel)",
				i, strings.TrimPrefix(strictErr.Error(), "json: "))
		}
		out = append(out, st)
	}
	return out, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

// saveLocked writes every non-Temp tunnel, plus saved tunnels not restored
// yet, to the state file. Called with opMu held.
func (m *Manager) saveLocked() error {
	if m.opts.StatePath == "" {
		return nil
	}
	m.mu.Lock()
	ts := make([]*tunnel, 0, len(m.tunnels))
	for _, t := range m.tunnels {
		if !t.temp() {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b *tunnel) int { return cmp.Compare(a.id, b.id) })
	st := stateFile{Version: stateVersion, Tunnels: make([]savedTunnel, 0, len(ts)+len(m.pending))}
	for _, t := range ts {
		if t.saved != nil {
			st.Tunnels = append(st.Tunnels, *t.saved) // as read: it could not be restored
			continue
		}
		if t.kind == KindListen {
			st.Tunnels = append(st.Tunnels, savedTunnel{Kind: KindListen, Listen: newSavedListen(t.lspec)})
		} else {
			st.Tunnels = append(st.Tunnels, savedTunnel{Kind: KindForward, Forward: newSavedForward(t.fspec)})
		}
	}
	st.Tunnels = append(st.Tunnels, m.pending...)
	m.mu.Unlock()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("tunnel: encode state: %w", err)
	}
	if err := config.WriteFileAtomic(m.opts.StatePath, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("tunnel: save state file %q: %w", m.opts.StatePath, err)
	}
	return nil
}

// Restore starts the tunnels saved in the state file, and retries tunnels
// whose earlier restore failed. A tunnel that cannot start stays listed
// with Info.Error set and stays saved. It returns the restored tunnels.
func (m *Manager) Restore(ctx context.Context) []Info {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	pending := m.pending
	m.pending = nil
	retry := m.retryableLocked()
	m.mu.Unlock()

	ids := make([]uint64, 0, len(pending)+len(retry))
	for _, st := range pending {
		ids = append(ids, m.restoreOne(ctx, st).id)
	}
	for _, t := range retry {
		if err := ctx.Err(); err != nil {
			break
		}
		m.retryOne(t, true)
		ids = append(ids, t.id)
	}
	if err := m.saveLocked(); err != nil {
		m.log.Error("tunnel: save state after restore failed", "err", err)
	}
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		if in, err := m.Info(id); err == nil {
			out = append(out, in)
		}
	}
	m.startRetries()
	return out
}

// retryableLocked returns, by id, the tunnels that failed to start and could
// start later (a busy port, a missing socket directory). Called with mu held.
func (m *Manager) retryableLocked() []*tunnel {
	var retry []*tunnel
	for _, t := range m.tunnels {
		if t.err != "" && t.stop == nil && !t.invalid() && !t.closed.Load() {
			retry = append(retry, t)
		}
	}
	slices.SortFunc(retry, func(a, b *tunnel) int { return cmp.Compare(a.id, b.id) })
	return retry
}

// retryOne tries again to start a tunnel that failed to. Called with opMu
// held. A failure is logged at warn level when loud, else at debug level:
// the retry loop logs each tunnel's error once, not at every attempt.
func (m *Manager) retryOne(t *tunnel, loud bool) bool {
	t.cancel()
	m.prepare(t)
	if err := m.start(t); err != nil {
		t.cancel()
		m.mu.Lock()
		same := t.err == err.Error()
		t.err = err.Error()
		m.mu.Unlock()
		if loud || !same {
			m.log.Warn("tunnel: restore failed; kept with its error and retried", "id", t.id, "kind", t.kind,
				"protocol", string(t.proto), "err", err)
		} else {
			m.log.Debug("tunnel: restore retry failed", "id", t.id, "protocol", string(t.proto), "err", err)
		}
		return false
	}
	m.log.Info("tunnel: restored", "id", t.id, "kind", t.kind, "protocol", string(t.proto),
		"listen", t.listenAddr, "target", t.targetAddr)
	return true
}

// Retry backoff of tunnels that failed to restore: the first retry after
// retryMin, then twice as long each time up to retryMax, until they start,
// are closed, or the Manager closes.
var (
	retryMin = time.Second
	retryMax = time.Minute
)

// startRetries starts the retry loop if a tunnel waits for a retry and the
// loop is not running.
func (m *Manager) startRetries() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.retrying || len(m.retryableLocked()) == 0 {
		return
	}
	m.retrying = true
	m.wg.Add(1)
	go m.retryLoop()
}

// retryLoop retries the tunnels that failed to start, with backoff, until
// none is left or the Manager closes.
func (m *Manager) retryLoop() {
	defer m.wg.Done()
	wait := retryMin
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-timer.C:
		}
		if m.retryFailed() == 0 {
			return
		}
		wait = min(2*wait, retryMax)
		timer.Reset(wait)
	}
}

// retryFailed makes one attempt at every tunnel waiting for a retry and
// returns how many still wait; at 0 it marks the loop stopped.
func (m *Manager) retryFailed() int {
	// Not Lock: Close holds opMu while it waits for this goroutine, and a
	// busy Manager is simply retried at the next tick.
	if !m.opMu.TryLock() {
		return 1
	}
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0
	}
	retry := m.retryableLocked()
	m.mu.Unlock()
	left, started := 0, 0
	for _, t := range retry {
		if m.retryOne(t, false) {
			started++
		} else {
			left++
		}
	}
	if started > 0 {
		if err := m.saveLocked(); err != nil {
			m.log.Error("tunnel: save state after restore failed", "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if left == 0 || m.closed {
		m.retrying = false
		return 0
	}
	return left
}

// restoreOne recreates one saved tunnel. It is always recorded: on failure
// with its error, so it is neither lost from List nor from the state file.
func (m *Manager) restoreOne(ctx context.Context, st savedTunnel) *tunnel {
	t, err := m.savedToTunnel(st)
	if err != nil {
		t = placeholder(st)
		t.saved = &st
	} else if err = ctx.Err(); err != nil {
		err = fmt.Errorf("tunnel: not restored: %w", err)
	} else {
		err = m.conflict(t)
	}
	m.mu.Lock()
	m.nextID++
	t.id = m.nextID
	m.mu.Unlock()
	m.prepare(t)
	if err == nil {
		err = m.start(t)
	}
	if err != nil {
		t.cancel()
		t.err = err.Error()
	}
	m.mu.Lock()
	m.tunnels[t.id] = t
	m.mu.Unlock()
	if err != nil {
		m.log.Warn("tunnel: restore failed; kept with its error", "id", t.id, "kind", t.kind,
			"protocol", string(t.proto), "err", err)
	} else {
		m.log.Info("tunnel: restored", "id", t.id, "kind", t.kind, "protocol", string(t.proto),
			"listen", t.listenAddr, "target", t.targetAddr)
	}
	return t
}

// savedToTunnel validates a saved entry into a tunnel, not started. An entry
// with an unknown key is refused (fail closed).
func (m *Manager) savedToTunnel(st savedTunnel) (*tunnel, error) {
	if st.bad != nil {
		return nil, st.bad
	}
	if st.Kind == KindListen {
		spec, err := st.Listen.spec()
		if err != nil {
			return nil, err
		}
		return m.newListenTunnel(spec)
	}
	spec, err := st.Forward.spec()
	if err != nil {
		return nil, err
	}
	return m.newForwardTunnel(spec)
}

// placeholder stands for a saved tunnel whose spec no longer validates.
func placeholder(st savedTunnel) *tunnel {
	t := &tunnel{kind: st.Kind}
	// Addresses that do not parse are left nil: Info.Error names them.
	if st.Kind == KindListen {
		t.lspec = st.Listen.ListenSpec
		t.lspec.Protocol = protocol.ID(st.Listen.Protocol)
		t.lspec.Target, _ = parseSavedAddr(st.Listen.Target)
		t.proto = t.lspec.Protocol
		t.targetAddr = t.lspec.Target
	} else {
		t.fspec = st.Forward.ForwardSpec
		t.fspec.Protocol = protocol.ID(st.Forward.Protocol)
		t.fspec.ListenAddr, _ = parseSavedAddr(st.Forward.ListenAddr)
		t.proto = t.fspec.Protocol
		t.listenAddr = t.fspec.ListenAddr
		if id, _, err := parsePeer(st.Forward.Peer); err == nil {
			t.targetAddr = p2pAddr(id)
		}
	}
	return t
}

// invalid reports a placeholder: retrying it cannot succeed.
func (t *tunnel) invalid() bool {
	if t.kind == KindListen {
		return t.target.maddr == nil
	}
	return t.bind.maddr == nil
}
