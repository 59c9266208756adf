// Command chat is a terminal chat room built on the warren library: every
// participant runs its own in-process node (warren.Open), joins a broadcast
// topic (package gossip) and can also send direct messages (package msg).
// It needs no daemon.
//
//	go run ./examples/chat --repo /tmp/alice --nick alice
//	go run ./examples/chat --repo /tmp/bob --nick bob --peer <address alice printed>
//
// Type a line to say it to the room. Commands: /msg <peer-id> <text> sends a
// direct message, /peers lists the peers, /quit (or Ctrl-D) leaves.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
)

// directType is the msg type of direct chat messages.
const directType = "chat.direct"

// sayTimeout bounds how long a line waits for someone to be in the room.
const sayTimeout = 3 * time.Second

// Options are the command-line flags.
type Options struct {
	Repo    string   // repo directory; created with Profile if missing
	Profile string   // config profile of a new repo ("default" or "test")
	Nick    string   // name shown to the others
	Room    string   // topic "chat.<room>"
	Peers   []string // multiaddrs (…/p2p/<id>) to connect to at start
}

// line is what travels on the topic and in direct messages.
type line struct {
	Nick string `json:"nick"`
	Text string `json:"text"`
}

func main() {
	var o Options
	var peers multiFlag
	flag.StringVar(&o.Repo, "repo", "", "repo directory (created if missing)")
	flag.StringVar(&o.Profile, "profile", config.ProfileDefault, "config profile of a new repo: default or test (loopback only)")
	flag.StringVar(&o.Nick, "nick", "", "your name in the room (default: from your peer ID)")
	flag.StringVar(&o.Room, "room", "lobby", "room to join")
	flag.Var(&peers, "peer", "multiaddr ending in /p2p/<id> to connect to (repeatable)")
	flag.Parse()
	o.Peers = peers
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// printer serialises output from the reading goroutines and the input loop.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, a...)
}

// run is the whole program: it returns when in ends, the user types /quit,
// or ctx is cancelled.
func run(ctx context.Context, o Options, in io.Reader, out io.Writer) error {
	if o.Repo == "" {
		return errors.New("--repo is required: the directory holding this participant's identity and config")
	}
	repo, err := openRepo(o.Repo, o.Profile)
	if err != nil {
		return err
	}
	if err := repo.Lock(); err != nil {
		return err
	}
	defer repo.Unlock()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := warren.Open(ctx, repo, log)
	if err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	defer n.Close()

	p := &printer{w: out}
	if o.Nick == "" {
		id := n.ID().String()
		o.Nick = id[len(id)-6:]
	}
	for _, addr := range o.Peers {
		ai, err := node.ParseTarget(addr)
		if err != nil {
			return fmt.Errorf("--peer: %w", err)
		}
		if err := n.Connect(ctx, ai); err != nil {
			return fmt.Errorf("connect to --peer %s: %w", addr, err)
		}
	}
	topicName := "chat." + o.Room
	room, err := n.Gossip().Join(topicName)
	if err != nil {
		return fmt.Errorf("join room %q: %w", o.Room, err)
	}
	sub, err := room.Subscribe(gossip.SubscribeOptions{})
	if err != nil {
		return fmt.Errorf("join room %q: %w", o.Room, err)
	}
	defer sub.Close()
	direct, err := n.Msg().Subscribe(directType, msg.SubscribeOptions{Policy: msg.DropOldest})
	if err != nil {
		return fmt.Errorf("receive direct messages: %w", err)
	}
	defer direct.Close()

	p.printf("chat: you are %s (%s) in room %q\n", o.Nick, n.ID(), o.Room)
	for _, a := range n.Addrs() {
		p.printf("chat: others join with --peer %s\n", a)
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred below, so it runs first)
	defer cancel()
	nicks := &nickBook{m: map[peer.ID]string{}}
	wg.Add(2)
	go func() { defer wg.Done(); receiveRoom(ctx, sub, n.ID(), nicks, p) }()
	go func() { defer wg.Done(); receiveDirect(ctx, direct, nicks, p) }()

	// Reading stdin cannot be cancelled; this goroutine ends when in does
	// (Ctrl-D, or the process exiting).
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var text string
		var open bool
		select {
		case text, open = <-lines:
		case <-ctx.Done():
			return nil
		}
		if !open || strings.TrimSpace(text) == "/quit" {
			return nil
		}
		handleInput(ctx, n, room, o.Nick, nicks, strings.TrimSpace(text), p)
	}
}

// openRepo opens the repo in dir, creating it with profile when missing.
func openRepo(dir, profile string) (*config.Repo, error) {
	if config.Exists(dir) {
		return config.Open(dir)
	}
	return config.Init(dir, profile)
}

// nickBook remembers the nick each peer last used, for /peers.
type nickBook struct {
	mu sync.Mutex
	m  map[peer.ID]string
}

func (b *nickBook) set(p peer.ID, nick string) {
	b.mu.Lock()
	b.m[p] = nick
	b.mu.Unlock()
}

func (b *nickBook) get(p peer.ID) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[p]
}

func decode(data []byte) line {
	var l line
	if json.Unmarshal(data, &l) != nil || l.Nick == "" {
		l = line{Nick: "?", Text: string(data)} // not from this program
	}
	return l
}

func receiveRoom(ctx context.Context, sub *gossip.Subscription, self peer.ID, nicks *nickBook, p *printer) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if m.From == self {
			continue // our own line, already on screen
		}
		l := decode(m.Data)
		nicks.set(m.From, l.Nick)
		p.printf("[%s] <%s> %s\n", m.Time.Format("15:04:05"), l.Nick, l.Text)
	}
}

func receiveDirect(ctx context.Context, sub *msg.Subscription, nicks *nickBook, p *printer) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		l := decode(m.Payload)
		nicks.set(m.From, l.Nick)
		p.printf("[%s] <%s> (direct) %s\n", m.Time.Format("15:04:05"), l.Nick, l.Text)
	}
}

func handleInput(ctx context.Context, n *warren.Node, room *gossip.Topic, nick string, nicks *nickBook, text string, p *printer) {
	switch {
	case text == "":
	case text == "/peers":
		inRoom := map[peer.ID]bool{}
		for _, id := range room.Peers() {
			inRoom[id] = true
		}
		peers := n.Peers()
		if len(peers) == 0 {
			p.printf("chat: no peers connected\n")
		}
		for _, pi := range peers {
			id := pi.ID
			where := ""
			if inRoom[id] {
				where = " (in this room)"
			}
			p.printf("chat: %s %s%s\n", pi.ID, nicks.get(id), where)
		}
	case strings.HasPrefix(text, "/msg ") || text == "/msg":
		to, body, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(text, "/msg")), " ")
		if to == "" || strings.TrimSpace(body) == "" {
			p.printf("chat: usage: /msg <peer-id> <text>\n")
			return
		}
		if err := sendDirect(ctx, n, to, line{Nick: nick, Text: strings.TrimSpace(body)}); err != nil {
			p.printf("chat: /msg %s: %v\n", to, err)
		}
	case strings.HasPrefix(text, "/"):
		p.printf("chat: unknown command %q: expected /msg <peer-id> <text>, /peers or /quit\n", strings.Fields(text)[0])
	default:
		data, _ := json.Marshal(line{Nick: nick, Text: text})
		sctx, cancel := context.WithTimeout(ctx, sayTimeout)
		defer cancel()
		if err := room.Publish(sctx, data); errors.Is(err, gossip.ErrNoPeers) {
			p.printf("chat: nobody else is in the room yet; not sent\n")
		} else if err != nil {
			p.printf("chat: not sent: %v\n", err)
		}
	}
}

func sendDirect(ctx context.Context, n *warren.Node, to string, l line) error {
	id, err := node.ParsePeerID(to)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.ConnectPeer(ctx, id); err != nil { // finds it in the DHT if need be
		return err
	}
	data, _ := json.Marshal(l)
	return n.Msg().Send(ctx, id, directType, data, msg.SendOptions{})
}
