package api

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

	"github.com/warren-p2p/warren/config"
)

// clientIdleTimeout is how long the client keeps an idle connection: less
// than the daemon's default api.idle_timeout (2 min), so that the client, not
// the daemon, closes it and a request never races the daemon's close.
const clientIdleTimeout = 30 * time.Second

// Client calls a daemon's control API.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for an endpoint record. It prefers the unix
// socket; over TCP it sends the token.
func NewClient(ep config.Endpoint, token string) (*Client, error) {
	switch {
	case ep.Unix != "":
		sock := ep.Unix
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}, IdleConnTimeout: clientIdleTimeout}
		return &Client{base: "http://warren", hc: &http.Client{Transport: tr}}, nil
	case ep.TCP != "":
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.IdleConnTimeout = clientIdleTimeout
		return &Client{base: "http://" + ep.TCP, token: token, hc: &http.Client{Transport: tr}}, nil
	}
	return nil, errors.New("API endpoint record names neither a unix socket nor a TCP address")
}

// ClientForRepo finds the API of the daemon running on the repo in dir.
func ClientForRepo(dir string) (*Client, error) {
	ep, err := config.ReadEndpoint(dir)
	if err != nil {
		return nil, err
	}
	token := ""
	if ep.Unix == "" {
		if token, err = config.ReadToken(dir); err != nil {
			return nil, err
		}
	}
	return NewClient(ep, token)
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

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
		return c.sendBody(ctx, method, path, "", nil)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("API %s %s: encode request: %w", method, path, err)
	}
	return c.sendBody(ctx, method, path, "application/json", bytes.NewReader(b))
}

// sendBody sends a request with a raw body of the given content type (none
// when body is nil) and turns an error answer into a *StatusError.
func (c *Client) sendBody(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
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
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &StatusError{Code: resp.StatusCode, Msg: e.Error}
		}
		return nil, &StatusError{Code: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// StatusError is an error answer from the API.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Version calls GET /v1/version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	return v, c.do(ctx, http.MethodGet, "/v1/version", nil, &v)
}

// ID calls GET /v1/id.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var v IDInfo
	return v, c.do(ctx, http.MethodGet, "/v1/id", nil, &v)
}

// Peers calls GET /v1/peers.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var v []PeerInfo
	return v, c.do(ctx, http.MethodGet, "/v1/peers", nil, &v)
}

// Connect calls POST /v1/peers/connect.
func (c *Client) Connect(ctx context.Context, addr string) (ConnectResult, error) {
	var v ConnectResult
	return v, c.do(ctx, http.MethodPost, "/v1/peers/connect", ConnectRequest{Addr: addr}, &v)
}

// Disconnect calls POST /v1/peers/disconnect.
func (c *Client) Disconnect(ctx context.Context, peerID string) error {
	return c.do(ctx, http.MethodPost, "/v1/peers/disconnect", DisconnectRequest{Peer: peerID}, nil)
}

// Ping calls POST /v1/ping.
func (c *Client) Ping(ctx context.Context, peerID string, count int) (PingResult, error) {
	var v PingResult
	return v, c.do(ctx, http.MethodPost, "/v1/ping", PingRequest{Peer: peerID, Count: count}, &v)
}

// Metrics fetches the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
