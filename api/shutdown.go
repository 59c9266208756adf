package api

// POST /v1/shutdown: stop the daemon from its API (warren shutdown).

import (
	"errors"
	"net/http"
	"os"

	"github.com/warren-p2p/warren/client"
)

// errNoShutdown answers POST /v1/shutdown on a server without a
// ServerOptions.Shutdown hook.
var errNoShutdown = withCode(client.CodeUnsupported,
	errors.New("this node was not started by warren daemon: its API cannot stop it (stop the program that embeds it)"))

func (s *Server) shutdownRoute() route {
	return route{pattern: "POST /v1/shutdown", h: s.shutdown, codes: []string{client.CodeInvalidArgument, client.CodeUnsupported}}
}

// shutdown answers, flushes the answer, and only then asks the owner of the
// server to stop (ServerOptions.Shutdown, at most once per Server): the
// owner's Server.Close waits for this handler, so the answer reaches the
// client before the listener closes.
func (s *Server) shutdown(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	if s.shutdownHook == nil {
		writeError(w, errNoShutdown)
		return
	}
	writeJSON(w, http.StatusOK, client.ShutdownResult{Status: "stopping", PID: os.Getpid()})
	_ = http.NewResponseController(w).Flush()
	s.shutdownOnce.Do(s.shutdownHook)
}
