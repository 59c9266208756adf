package api

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/warren-p2p/warren/client"
)

// wireTypes are the schemas of docs/openapi.yaml: every struct of package
// client that is JSON on the wire, under its Go name.
var wireTypes = []any{
	client.ErrorBody{}, client.Health{}, client.VersionInfo{}, client.IDInfo{}, client.PeerInfo{},
	client.ConnectRequest{}, client.ConnectResult{}, client.DisconnectRequest{}, client.Empty{},
	client.PingRequest{}, client.PingResult{}, client.ShutdownResult{}, client.TopicLeaveRequest{}, client.TopicLeaveResult{},
	client.Status{}, client.PortMapping{}, client.RelayReservation{}, client.HolePunchStats{}, client.HolePunchAttempt{},
	client.SendRequest{}, client.SendResult{}, client.BulkSendError{}, client.BulkMessage{}, client.ReceivedMessage{},
	client.SubscriptionInfo{}, client.MessageEvent{}, client.RequestRequest{}, client.HandlingInfo{},
	client.IncomingRequest{}, client.RequestEvent{}, client.ReplyRequest{}, client.MessageStats{},
	client.MessageTypeStats{}, client.MessageSubscriptionStats{}, client.QueueDepths{}, client.MessagePeerStats{},
	client.PublishRequest{}, client.PublishResult{}, client.BulkPublishError{}, client.BulkPublishMessage{},
	client.TopicMessage{}, client.TopicSubscriptionInfo{}, client.TopicEvent{}, client.TopicInfo{},
	client.TunnelInfo{}, client.TunnelStreamInfo{}, client.TunnelListenRequest{}, client.TunnelForwardRequest{},
	client.TunnelCloseRequest{}, client.TunnelCloseResult{}, client.TunnelStreamCloseRequest{}, client.TunnelStreamCloseResult{},
}

type yamlMap = map[string]any

func loadOpenAPI(t *testing.T) yamlMap {
	t.Helper()
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlMap
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("docs/openapi.yaml: openapi %v, want 3.1.0", doc["openapi"])
	}
	return doc
}

// get walks doc along keys; nil when a key is missing.
func get(doc any, keys ...string) any {
	for _, k := range keys {
		m, ok := doc.(yamlMap)
		if !ok {
			return nil
		}
		doc = m[k]
	}
	return doc
}

// resolve follows a {"$ref": "#/components/..."} to what it names.
func resolve(t *testing.T, doc yamlMap, v any) yamlMap {
	t.Helper()
	m, _ := v.(yamlMap)
	if ref, ok := m["$ref"].(string); ok {
		target, _ := get(doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...).(yamlMap)
		if target == nil {
			t.Fatalf("docs/openapi.yaml: dangling $ref %s", ref)
		}
		return target
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// The document names exactly the server's routes, and for each the
// statuses and error codes of the route table (routes.go), which the
// server checks at run time (checkedWriter).
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := NewServer(newMsgTestNode(t), ServerOptions{})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	table := map[string]route{}
	for _, rt := range s.routes() {
		table[rt.pattern] = rt
	}
	documented := map[string]yamlMap{}
	paths, _ := doc["paths"].(yamlMap)
	for path, item := range paths {
		for method, op := range item.(yamlMap) {
			documented[strings.ToUpper(method)+" "+path], _ = op.(yamlMap)
		}
	}
	for _, p := range sortedKeys(table) {
		if documented[p] == nil {
			t.Errorf("route %s is not in docs/openapi.yaml", p)
		}
	}
	for _, p := range sortedKeys(documented) {
		rt, ok := table[p]
		if !ok {
			t.Errorf("docs/openapi.yaml documents %s, which the server does not serve", p)
			continue
		}
		// What the table says: status -> codes.
		want := map[string][]string{"200": nil}
		for _, c := range with(rt.codes, tcpCodes...) {
			st, ok := codeStatus[c]
			if !ok {
				t.Fatalf("route %s: code %q has no status", p, c)
			}
			k := strconv.Itoa(st)
			if !slices.Contains(want[k], c) {
				want[k] = append(want[k], c)
			}
		}
		got := map[string][]string{}
		resps, _ := documented[p]["responses"].(yamlMap)
		for status, r := range resps {
			var codes []string
			xs, _ := resolve(t, doc, r)["x-codes"].([]any)
			for _, c := range xs {
				codes = append(codes, c.(string))
			}
			got[status] = codes
		}
		if _, ok := got["200"]; ok {
			got["200"] = nil
		}
		for _, m := range []map[string][]string{want, got} {
			for k := range m {
				sort.Strings(m[k])
			}
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: docs/openapi.yaml answers %v; the route table %v", p, got, want)
		}
	}
}

// ErrorBody's code enum, the client's Code constants and codeStatus list
// the same codes.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	var enum []string
	for _, c := range get(doc, "components", "schemas", "ErrorBody", "properties", "code", "enum").([]any) {
		enum = append(enum, c.(string))
	}
	constants := clientConstants(t, "Code")
	sort.Strings(enum)
	sort.Strings(constants)
	table := sortedKeys(codeStatus)
	if !reflect.DeepEqual(enum, constants) || !reflect.DeepEqual(table, constants) {
		t.Fatalf("error codes differ:\ndocs/openapi.yaml %v\nclient constants  %v\ncodeStatus        %v", enum, constants, table)
	}
	for _, c := range table {
		if codeStatus[c] < 400 || http.StatusText(codeStatus[c]) == "" {
			t.Errorf("code %s: status %d", c, codeStatus[c])
		}
	}
}

// clientConstants returns the values of package client's string constants
// whose names start with prefix.
func clientConstants(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for _, f := range clientFiles(t) {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(n.Name, prefix) && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

func clientFiles(t *testing.T) []*ast.File {
	t.Helper()
	names, err := filepath.Glob("../client/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// The schemas of docs/openapi.yaml are package client's wire types: the
// same names, and for each the same JSON fields (embedded structs inline),
// both ways, with matching JSON types.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas, _ := get(doc, "components", "schemas").(yamlMap)
	types := map[string]reflect.Type{}
	for _, v := range wireTypes {
		types[reflect.TypeOf(v).Name()] = reflect.TypeOf(v)
	}
	// Every struct of package client with a json tag is a wire type.
	for _, f := range clientFiles(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			tagged := len(st.Fields.List) == 0 && ts.Name.Name == "Empty"
			for _, fl := range st.Fields.List {
				tagged = tagged || fl.Tag != nil && strings.Contains(fl.Tag.Value, `json:"`)
			}
			if tagged && types[ts.Name.Name] == nil {
				t.Errorf("client.%s is JSON on the wire but not in wireTypes (and so not checked against docs/openapi.yaml)", ts.Name.Name)
			}
			return true
		})
	}
	for _, name := range sortedKeys(types) {
		if schemas[name] == nil {
			t.Errorf("client.%s has no schema in docs/openapi.yaml", name)
		}
	}
	for _, name := range sortedKeys(schemas) {
		typ, ok := types[name]
		if !ok {
			t.Errorf("docs/openapi.yaml: schema %s is no client wire type", name)
			continue
		}
		props := schemaProperties(t, doc, schemas[name].(yamlMap))
		fields := jsonFields(typ)
		for _, f := range sortedKeys(fields) {
			p, ok := props[f]
			if !ok {
				t.Errorf("schema %s lacks property %q of client.%s", name, f, name)
				continue
			}
			if err := typeMatches(doc, p, fields[f]); err != "" {
				t.Errorf("schema %s, property %q: %s", name, f, err)
			}
		}
		for _, p := range sortedKeys(props) {
			if _, ok := fields[p]; !ok {
				t.Errorf("schema %s has property %q, which client.%s lacks", name, p, name)
			}
		}
	}
}

// schemaProperties returns a schema's properties, those of its allOf parts
// included.
func schemaProperties(t *testing.T, doc yamlMap, s yamlMap) map[string]yamlMap {
	out := map[string]yamlMap{}
	props, _ := s["properties"].(yamlMap)
	for k, v := range props {
		out[k], _ = v.(yamlMap)
	}
	all, _ := s["allOf"].([]any)
	for _, part := range all {
		for k, v := range schemaProperties(t, doc, resolve(t, doc, part)) {
			out[k] = v
		}
	}
	return out
}

// jsonFields returns the JSON fields of a struct type, embedded structs'
// fields inline.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			for k, v := range jsonFields(et) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

var timeType = reflect.TypeOf(time.Time{})

// typeMatches checks a property's schema against the Go type of its field;
// it returns what differs, or "".
func typeMatches(doc yamlMap, p yamlMap, typ reflect.Type) string {
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if ref, ok := p["$ref"].(string); ok {
		if typ.Kind() != reflect.Struct || typ == timeType || !strings.HasSuffix(ref, "/"+typ.Name()) {
			return "$ref " + ref + " for Go type " + typ.String()
		}
		return ""
	}
	want := ""
	switch {
	case typ == timeType:
		if p["format"] != "date-time" {
			return "a time: expected format date-time"
		}
		want = "string"
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.Uint8:
		if p["contentEncoding"] != "base64" {
			return "bytes: expected contentEncoding base64"
		}
		want = "string"
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		want = "number"
	case typ.Kind() == reflect.Slice:
		items, _ := p["items"].(yamlMap)
		if p["type"] != "array" || items == nil {
			return "expected an array with items for " + typ.String()
		}
		return typeMatches(doc, items, typ.Elem())
	case typ.Kind() == reflect.Map:
		items, _ := p["additionalProperties"].(yamlMap)
		if p["type"] != "object" || items == nil {
			return "expected an object with additionalProperties for " + typ.String()
		}
		return typeMatches(doc, items, typ.Elem())
	default:
		return "no JSON type for " + typ.String()
	}
	if p["type"] != want {
		return "type " + toString(p["type"]) + ", but Go " + typ.String() + " is " + want
	}
	return ""
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}
