package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/warren-p2p/warren/client"
)

// requestTypes are the JSON bodies (and bulk lines) the API decodes.
func requestTypes() []func() any {
	return []func() any{
		func() any { return new(client.ConnectRequest) },
		func() any { return new(client.DisconnectRequest) },
		func() any { return new(client.PingRequest) },
		func() any { return new(client.SendRequest) },
		func() any { return new(client.RequestRequest) },
		func() any { return new(client.ReplyRequest) },
		func() any { return new(client.BulkMessage) },
		func() any { return new(client.PublishRequest) },
		func() any { return new(client.BulkPublishMessage) },
		func() any { return new(client.TunnelListenRequest) },
		func() any { return new(client.TunnelForwardRequest) },
		func() any { return new(client.TunnelCloseRequest) },
		func() any { return new(client.TunnelStreamCloseRequest) },
	}
}

// FuzzDecodeRequest: decoding any bytes as any request never panics; what
// decodes is one object with only whitespace after it, and survives a round
// trip. Run: go test ./api -run '^$' -fuzz FuzzDecodeRequest -fuzztime 10s
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"peer":"12D3KooW","type":"t","payload":"aGk=","priority":"high","id":"00"}` + "\n",
		`{"addr":"/ip4/127.0.0.1/tcp/1/p2p/x"}`, `{"peer":"x","count":3}`, `{"rid":"1","error":"no"}`,
		`{"topic":"t","data":"eA==","timeout_ms":5}`, `{"protocol":"/x/a","target":"/ip4/1.2.3.4/tcp/1","allow":["a","b"]}`,
		`{"all":true,"id":7}`, `{"a":1}`, `{"peer":"x"} junk`, `{"peer":"x"}{}`, `null`, `[]`, ``, `{"payload":"!!"}`,
		`{"count":1e400}`, `{"timeout_ms":-9223372036854775808}`, "{\"peer\":\"\\ud800\"}", `{"peer":"x"`,
	} {
		f.Add([]byte(s))
	}
	types := requestTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range types {
			v := mk()
			err := decodeJSON(bytes.NewReader(data), v)
			if err != nil {
				continue
			}
			trimmed := bytes.TrimLeft(data, " \t\r\n")
			if len(trimmed) == 0 || trimmed[0] != '{' {
				t.Fatalf("%T: accepted %q, not an object", v, data)
			}
			if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
				t.Fatalf("%T: accepted %q, which encoding/json refuses as one value: %v", v, data, err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T: re-encode %+v: %v", v, v, err)
			}
			w := mk()
			if err := decodeJSON(bytes.NewReader(again), w); err != nil {
				t.Fatalf("%T: decode of its own encoding %s: %v", v, again, err)
			}
			if !reflect.DeepEqual(normal(v), normal(w)) {
				t.Fatalf("%T: round trip changed %+v to %+v", v, v, w)
			}
		}
	})
}

// normal re-encodes v, so that nil and empty slices compare equal.
func normal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
