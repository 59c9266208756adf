package api

import (
	"bytes"
	"runtime/pprof"
	"strings"
)

// handlersRunning reports whether any handler of the endpoint group recv
// (e.g. "msgAPI", "gossipAPI") is running.
func handlersRunning(recv string) bool {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Contains(b.String(), "api.(*"+recv+")")
}
