package api

import (
	"strings"
	"testing"

	"github.com/warren-p2p/warren/client"
)

// Decoding errors name the JSON field and the kind of value it takes, never
// Go's struct fields and types.
func TestDecodeErrorsNameJSONFields(t *testing.T) {
	for _, c := range []struct {
		body string
		v    any
		want string
	}{
		{`{"payload": 5}`, &client.BulkMessage{}, `field "payload": expected a base64 string, got a JSON number`},
		{`{"id": "x"}`, &client.TunnelCloseRequest{}, `field "id": expected an integer, got a JSON string`},
		{`{"all": "yes"}`, &client.TunnelCloseRequest{}, `field "all": expected true or false, got a JSON string`},
		{`{"allow": "x"}`, &client.TunnelListenRequest{}, `field "allow": expected an array of strings, got a JSON string`},
		{`{"payload": "!!"}`, &client.BulkMessage{}, "not valid base64"},
		{`{"nope": 1}`, &client.BulkMessage{}, `unknown field "nope"`},
	} {
		err := decodeJSON(strings.NewReader(c.body), c.v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
			continue
		}
		for _, bad := range []string{"Go struct", "uint8", "json: ", "BulkMessage", "TunnelCloseRequest"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%s: %q has Go text %q", c.body, err, bad)
			}
		}
	}
}
