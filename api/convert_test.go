package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"
)

// fill sets every field of the struct v points to (recursively) to a
// non-zero value.
func fill(v reflect.Value) {
	if v.Type() == reflect.TypeOf(multiaddr.Multiaddr{}) { // a slice of opaque components
		v.Set(reflect.ValueOf(multiaddr.StringCast("/ip4/127.0.0.1/tcp/1")))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Unix(1700000000, 0)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	}
}

// zeroFields lists the fields of v (recursively) that are zero.
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if v.Interface().(time.Time).IsZero() {
				return []string{path}
			}
			return nil
		}
		var out []string
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				out = append(out, zeroFields(v.Field(i), path+"."+f.Name)...)
			}
		}
		return out
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Kind() == reflect.Slice {
			return zeroFields(v.Index(0), path+"[0]")
		}
		var out []string
		for _, k := range v.MapKeys() {
			out = append(out, zeroFields(v.MapIndex(k), path+"[k]")...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// The conversions of library values to wire types copy every field: a
// field added to a wire type but not converted shows up here as zero.
func TestConversionsCopyEveryField(t *testing.T) {
	filled := func(p any) any { fill(reflect.ValueOf(p).Elem()); return reflect.ValueOf(p).Elem().Interface() }
	for name, out := range map[string]any{
		"peerInfo":         peerInfo(filled(&node.PeerInfo{}).(node.PeerInfo)),
		"messageStats":     messageStats(filled(&msg.Stats{}).(msg.Stats)),
		"topicInfo":        topicInfo(filled(&gossip.TopicInfo{}).(gossip.TopicInfo)),
		"tunnelInfo":       tunnelInfo(filled(&tunnel.Info{}).(tunnel.Info)),
		"tunnelStreamInfo": tunnelStreamInfo(filled(&tunnel.StreamInfo{}).(tunnel.StreamInfo)),
		"statusInfo":       statusInfo(filled(&node.Status{}).(node.Status), "id", "net", time.Second),
	} {
		if z := zeroFields(reflect.ValueOf(out), name); len(z) > 0 {
			t.Errorf("%s leaves zero: %v", name, z)
		}
	}
}

// Every JSON field a library value had when /v1 exposed it directly stays
// on the wire: a field the library adds fails here until the wire type
// (and docs/openapi.yaml) has it too, so that it is added on purpose.
func TestWireTypesKeepLibraryFields(t *testing.T) {
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeOf(node.PeerInfo{}), reflect.TypeOf(client.PeerInfo{})},
		{reflect.TypeOf(msg.Stats{}), reflect.TypeOf(client.MessageStats{})},
		{reflect.TypeOf(msg.TypeStats{}), reflect.TypeOf(client.MessageTypeStats{})},
		{reflect.TypeOf(msg.SubscriptionStats{}), reflect.TypeOf(client.MessageSubscriptionStats{})},
		{reflect.TypeOf(msg.PeerStats{}), reflect.TypeOf(client.MessagePeerStats{})},
		{reflect.TypeOf(msg.QueueDepths{}), reflect.TypeOf(client.QueueDepths{})},
		{reflect.TypeOf(gossip.TopicInfo{}), reflect.TypeOf(client.TopicInfo{})},
		{reflect.TypeOf(tunnel.Info{}), reflect.TypeOf(client.TunnelInfo{})},
		{reflect.TypeOf(tunnel.StreamInfo{}), reflect.TypeOf(client.TunnelStreamInfo{})},
		{reflect.TypeOf(tunnel.Filter{}), reflect.TypeOf(client.TunnelCloseRequest{})},
	} {
		wire := jsonFields(pair[1])
		for name := range jsonFields(pair[0]) {
			if _, ok := wire[name]; !ok {
				t.Errorf("%s has JSON field %q, which %s lacks: add it to the wire type, its conversion and docs/openapi.yaml", pair[0], name, pair[1])
			}
		}
	}
}

// The conversions keep the JSON a library value had on /v1 before the
// library fields were typed (peer.ID, protocol.ID, ma.Multiaddr and
// tunnel.Kind marshal as their text): every key of the library value's
// JSON has the same value in the wire value's, for a filled value and for
// the zero one (nil addresses are "", an empty allow-list is absent).
func TestConversionsKeepLibraryJSON(t *testing.T) {
	filled := func(p any) any { fill(reflect.ValueOf(p).Elem()); return reflect.ValueOf(p).Elem().Interface() }
	type pair struct{ lib, wire any }
	cases := map[string]pair{
		"peerInfo":         {filled(&node.PeerInfo{}), peerInfo(filled(&node.PeerInfo{}).(node.PeerInfo))},
		"topicInfo":        {filled(&gossip.TopicInfo{}), topicInfo(filled(&gossip.TopicInfo{}).(gossip.TopicInfo))},
		"tunnelInfo":       {filled(&tunnel.Info{}), tunnelInfo(filled(&tunnel.Info{}).(tunnel.Info))},
		"tunnelStreamInfo": {filled(&tunnel.StreamInfo{}), tunnelStreamInfo(filled(&tunnel.StreamInfo{}).(tunnel.StreamInfo))},
		"zero tunnelInfo":  {tunnel.Info{}, tunnelInfo(tunnel.Info{})},
		"zero streamInfo":  {tunnel.StreamInfo{}, tunnelStreamInfo(tunnel.StreamInfo{})},
	}
	for name, c := range cases {
		lib, wire := jsonObject(t, c.lib), jsonObject(t, c.wire)
		for k, v := range lib {
			if w, ok := wire[k]; !ok || !reflect.DeepEqual(v, w) {
				t.Errorf("%s: %q is %v in the library's JSON, %v on the wire", name, k, v, w)
			}
		}
		for k := range wire {
			if _, ok := lib[k]; !ok && !strings.HasPrefix(name, "zero") {
				t.Errorf("%s: %q is on the wire, not in the library's JSON", name, k)
			}
		}
	}
}

func jsonObject(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
