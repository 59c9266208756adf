package api

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"
)

// handlersRunning reports whether any handler of the endpoint group recv
// (e.g. "msgAPI", "gossipAPI") is running.
func handlersRunning(recv string) bool {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Contains(b.String(), "api.(*"+recv+")")
}

// checkContract makes the test fail if s answered, by the end of it, a
// status its route does not declare (docs/openapi.yaml would be wrong).
func checkContract(t testing.TB, s *Server) {
	t.Cleanup(func() {
		if n := s.undeclared.Load(); n != 0 {
			t.Errorf("the API answered %d times with a status its route table does not declare (see the error log)", n)
		}
	})
}
