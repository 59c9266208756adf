package gossip

import (
	"errors"

	"github.com/warren-p2p/warren/internal/errkind"
)

// Errors callers branch on with errors.Is. Each error of the package wraps
// at most one of them, once, behind the operation's own words.
var (
	// ErrClosed: the Service, Topic or Subscription is closed.
	ErrClosed = errors.New("closed")
	// ErrNoPeers is wrapped by Publish when no peer subscribed to the topic
	// within the publish timeout.
	ErrNoPeers = errors.New("no peers subscribed")
	// ErrTooLarge is wrapped by Publish when the payload exceeds
	// MaxMessageSize; the error names both sizes.
	ErrTooLarge = errors.New("message too large")
	// ErrTooManyTopics is wrapped by Join (and so Subscribe and Publish)
	// when the node already has Options.MaxTopicsPerRPC topics: its hello
	// to new peers lists them all in one RPC, and peers drop an RPC with
	// more.
	ErrTooManyTopics = errors.New("too many topics joined")
	// ErrInvalidTopic: a topic name is not 1 to MaxTopicLen letters,
	// digits, '.', '_' or '-' starting with a letter or digit.
	ErrInvalidTopic = errors.New("invalid topic name")
	// ErrInvalid: another argument is malformed (an option, a nil
	// validator).
	ErrInvalid = errors.New("invalid argument")
	// ErrInUse: a topic cannot be left while its Subscriptions are open, a
	// validator cannot be registered twice.
	ErrInUse = errors.New("in use")
	// ErrRejected: a published message was refused by the topic's
	// validator.
	ErrRejected = errors.New("refused by validation")
	// ErrLeft: the Topic was left (closed); join the topic again.
	ErrLeft = errors.New("topic was left")
)

// kindf is fmt.Errorf(format, a...) of the given kind: errors.Is matches
// the kind and whatever the error wraps, and the text is the message's alone.
func kindf(kind error, format string, a ...any) error { return errkind.Errorf(kind, format, a...) }
