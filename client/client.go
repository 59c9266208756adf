// Package client is the Go client of a warren daemon's control API (/v1)
// and the definition of its wire types: every request, response and stream
// record, as JSON. docs/api.md is the API's reference and docs/openapi.yaml
// its machine-readable contract, which a test keeps in step with these
// types.
//
// The package imports no libp2p package and none of warren's library
// packages: a program that only talks to a daemon stays small. Peer IDs and
// multiaddrs are strings on the wire.
//
// Errors answered by the daemon are *Error values carrying the HTTP status
// and a stable machine-readable code (the Code constants):
//
//	var e *client.Error
//	if errors.As(err, &e) && e.Code == client.CodeConflict { ... }
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/warren-p2p/warren/internal/repofile"
)

// idleTimeout is how long the client keeps an idle connection: less than
// the daemon's default api.idle_timeout (2 min), so that the client, not
// the daemon, closes it and a request never races the daemon's close.
const idleTimeout = 30 * time.Second

// maxErrorBody bounds the error body the client reads.
const maxErrorBody = 64 << 10

// Endpoint is where a daemon serves its API: a unix socket path, or a
// loopback TCP address ("127.0.0.1:5001") that needs the bearer token.
type Endpoint struct {
	Unix string
	TCP  string
}

// Client calls a daemon's control API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client for an endpoint. It prefers the unix socket; over
// TCP it sends token as "Authorization: Bearer <token>".
func New(ep Endpoint, token string) (*Client, error) {
	switch {
	case ep.Unix != "":
		sock := ep.Unix
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}, IdleConnTimeout: idleTimeout}
		return &Client{base: "http://warren", hc: &http.Client{Transport: tr}}, nil
	case ep.TCP != "":
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.IdleConnTimeout = idleTimeout
		return &Client{base: "http://" + ep.TCP, token: token, hc: &http.Client{Transport: tr}}, nil
	}
	return nil, errors.New("API endpoint names neither a unix socket nor a TCP address")
}

// DefaultRepo is the repo directory the CLI uses without --repo:
// $WARREN_REPO, else ~/.warren.
func DefaultRepo() (string, error) { return repofile.DefaultDir("") }

// ForRepo finds the API of the daemon running on the repo in dir (""
// means DefaultRepo) through the repo's api.json, and its api.token when
// the daemon serves TCP only. Like the daemon it refuses a repo another
// local user could have planted or could change; with no daemon running
// the error matches ErrNoDaemon.
func ForRepo(dir string) (*Client, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultRepo(); err != nil {
			return nil, err
		}
	}
	ep, err := repofile.ReadEndpoint(dir)
	if err != nil {
		return nil, err
	}
	token := ""
	if ep.Unix == "" {
		if token, err = repofile.ReadToken(dir); err != nil {
			return nil, err
		}
	}
	return New(Endpoint{Unix: ep.Unix, TCP: ep.TCP}, token)
}

// ErrNoDaemon is matched (errors.Is) by ForRepo's error when no daemon has
// recorded an endpoint in the repo.
var ErrNoDaemon = repofile.ErrNoEndpoint

// ErrUnsafeRepo is matched (errors.Is) by ForRepo's error when the repo or
// its api.json or api.token could have been planted or changed by another
// local user.
var ErrUnsafeRepo = repofile.ErrUnsafeRepo

// Close releases idle connections. Open streams stay open until their own
// Close.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when out is not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	if in == nil {
		return c.sendBody(ctx, method, path, "", nil, nil)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("API %s %s: encode request: %w", method, path, err)
	}
	return c.sendBody(ctx, method, path, "application/json", bytes.NewReader(b), nil)
}

// sendBody sends a request with a raw body of the given content type (none
// when body is nil) and turns an error answer into an *Error, decoding its
// body also into errBody when that is not nil (the bulk endpoints' error
// bodies carry a count).
func (c *Client) sendBody(ctx context.Context, method, path, contentType string, body io.Reader, errBody any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("API %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach the warren daemon: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, errorFrom(resp.StatusCode, b, errBody)
	}
	return resp, nil
}

// errorFrom builds the *Error of an error answer with body b.
func errorFrom(status int, b []byte, errBody any) *Error {
	var body ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		if errBody != nil {
			_ = json.Unmarshal(b, errBody)
		}
		return &Error{Status: status, Code: body.Code, Message: body.Error}
	}
	// Not the API's JSON (a proxy, or net/http itself): keep the text.
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Message: msg}
}

// Metrics fetches the Prometheus text exposition (GET /metrics).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
