package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/webui"
)

// webuiProbeTimeout bounds the check that the daemon serves the dashboard.
const webuiProbeTimeout = 5 * time.Second

func webuiCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "webui",
		Short: "Print the URL of the running daemon's web dashboard, logged in",
		Long: `Print the URL of the web dashboard the running daemon serves on its loopback
TCP API ([api] dashboard, on by default; without api.tcp the daemon picks a
loopback port and records it in api.json). The URL carries the API token in
its fragment (#token=...), which the browser keeps to itself: the page moves
it to the tab's sessionStorage and sends it as a bearer header on every /v1
call. Anyone who can read the URL can drive the node: do not share it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := dashboardURL(cmd.Context(), e)
			if err != nil {
				return err
			}
			if asJSON {
				return e.printJSON(struct {
					URL string `json:"url"`
				}{u})
			}
			e.printf("%s\n", u)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, `print {"url": "..."}`)
	return c
}

// dashboardURL finds the daemon's TCP API in api.json, checks that it serves
// the dashboard, and returns the dashboard's URL with the token.
func dashboardURL(ctx context.Context, e *env) (string, error) {
	dir, err := e.repoDir()
	if err != nil {
		return "", err
	}
	ep, err := config.ReadEndpoint(dir)
	if errors.Is(err, config.ErrNoEndpoint) {
		return "", fmt.Errorf("no warren daemon is running on repo %s: start one with 'warren daemon'", dir)
	}
	if err != nil {
		return "", err
	}
	if ep.TCP == "" {
		return "", fmt.Errorf("the daemon on %s serves no TCP API, so no dashboard: set dashboard = true (or tcp) in the [api] section of %s and restart it", dir, config.ConfigFile)
	}
	tok, err := config.ReadToken(dir)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, webuiProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, webui.URL(ep.TCP, ""), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return "", fmt.Errorf("the daemon's TCP API at %s did not answer: %w", ep.TCP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the daemon at %s serves no dashboard (answered %s to %s): set dashboard = true in the [api] section of %s and restart it", ep.TCP, resp.Status, webui.Prefix, config.ConfigFile)
	}
	return webui.URL(ep.TCP, tok), nil
}
