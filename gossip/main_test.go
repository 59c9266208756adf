package gossip

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its Services and hosts; nothing may be left running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
