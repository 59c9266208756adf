package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// numericSetting is one int, int64 or Duration field of Config, found by
// reflection, with its dotted TOML key.
type numericSetting struct {
	key  string
	path []int
	kind string // "int", "int64" or "duration"
}

func numericSettings(t *testing.T) []numericSetting {
	t.Helper()
	var out []numericSetting
	durType := reflect.TypeOf(Duration(0))
	var walk func(typ reflect.Type, prefix string, path []int)
	walk = func(typ reflect.Type, prefix string, path []int) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			key := prefix + name
			p := append(append([]int{}, path...), i)
			switch {
			case f.Type == durType:
				out = append(out, numericSetting{key, p, "duration"})
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, key+".", p)
			case f.Type.Kind() == reflect.Int:
				out = append(out, numericSetting{key, p, "int"})
			case f.Type.Kind() == reflect.Int64:
				out = append(out, numericSetting{key, p, "int64"})
			case f.Type.Kind() >= reflect.Int8 && f.Type.Kind() <= reflect.Float64:
				t.Errorf("setting %s has type %v: give it a range in ranges() and teach this test its type", key, f.Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

// TestEveryNumericSettingIsRanged sets every numeric setting, one at a time,
// below and far above any sane value, and expects an error that names it
// and its range: a new setting without a range check fails here.
func TestEveryNumericSettingIsRanged(t *testing.T) {
	settings := numericSettings(t)
	if len(settings) < 17 {
		t.Fatalf("found only %d numeric settings: %v", len(settings), settings)
	}
	ints, durs := func() ([]intRange, []durRange) { c := Default(); return c.ranges() }()
	ranged := map[string]bool{}
	for _, r := range ints {
		ranged[r.key] = true
	}
	for _, r := range durs {
		ranged[r.key] = true
	}
	for _, s := range settings {
		if !ranged[s.key] {
			t.Errorf("%s has no range in ranges()", s.key)
		}
		var values []any
		switch s.kind {
		case "int":
			values = []any{-1, math.MinInt, math.MaxInt, 99999999999}
		case "int64":
			values = []any{int64(-1), int64(math.MinInt64), int64(math.MaxInt64)}
		case "duration":
			values = []any{Duration(-1), Duration(-time.Hour), Duration(math.MaxInt64), Duration(1000 * time.Hour)}
		}
		for _, v := range values {
			c := Default()
			reflect.ValueOf(&c).Elem().FieldByIndex(s.path).Set(reflect.ValueOf(v))
			err := c.Validate()
			if err == nil {
				t.Errorf("%s = %v accepted", s.key, v)
				continue
			}
			if !strings.Contains(err.Error(), s.key+": expected ") || !strings.Contains(err.Error(), "..") {
				t.Errorf("%s = %v: error %q does not name the setting and its range", s.key, v, err)
			}
		}
	}
}

// TestRangesAreInclusiveAndParsed checks both ends of every range through
// the TOML parser, and the exact wording of one error.
func TestRangesAreInclusiveAndParsed(t *testing.T) {
	def := Default()
	ints, durs := def.ranges()
	set := func(key, value string) string {
		i := strings.LastIndex(key, ".")
		return fmt.Sprintf("[%s]\n%s = %s\n", key[:i], key[i+1:], value)
	}
	for _, r := range ints {
		for _, v := range []int64{r.min, r.max} {
			in := set(r.key, fmt.Sprint(v))
			if r.key == "swarm.conn_mgr.low_water" && v > int64(def.Swarm.ConnMgr.HighWater) {
				in = "[swarm.conn_mgr]\nhigh_water = " + fmt.Sprint(MaxConnections) + "\nlow_water = " + fmt.Sprint(v) + "\n"
			}
			if r.key == "swarm.conn_mgr.high_water" && v < int64(def.Swarm.ConnMgr.LowWater) {
				in = "[swarm.conn_mgr]\nlow_water = 0\nhigh_water = " + fmt.Sprint(v) + "\n"
			}
			if _, err := Parse([]byte(in)); err != nil {
				t.Errorf("%q refused: %v", in, err)
			}
		}
		for _, v := range []int64{r.min - 1, r.max + 1} {
			in := set(r.key, fmt.Sprint(v))
			_, err := Parse([]byte(in))
			want := fmt.Sprintf("%s: expected %d..%d%s, got %d", r.key, r.min, r.max, r.note, v)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %v, want %q", in, err, want)
			}
		}
	}
	for _, r := range durs {
		for _, v := range []time.Duration{r.min, r.max} {
			in := set(r.key, fmt.Sprintf("'%s'", v))
			if _, err := Parse([]byte(in)); err != nil {
				t.Errorf("%q refused: %v", in, err)
			}
		}
		for _, v := range []time.Duration{r.min - time.Nanosecond, r.max + time.Nanosecond, -time.Second} {
			in := set(r.key, fmt.Sprintf("'%s'", v))
			if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), r.key+": expected a duration ") {
				t.Errorf("%q: error %v", in, err)
			}
		}
	}
	_, err := Parse([]byte("[swarm.resource_manager]\nmax_memory_mb = 99999999999\n"))
	if want := "swarm.resource_manager.max_memory_mb: expected 16..1048576, got 99999999999"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	_, err = Parse([]byte("[tunnels]\ndial_timeout = '-1s'\n"))
	if want := "tunnels.dial_timeout: expected a duration 1ms..1h, got -1s"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	// The largest memory accepted is still a valid byte count (node shifts it by 20).
	if mb := int64(MaxMemoryMB); mb<<20>>20 != mb || mb<<20 <= 0 {
		t.Fatal("MaxMemoryMB << 20 overflows")
	}
	_, err = Parse([]byte("[swarm.conn_mgr]\nlow_water = 300\nhigh_water = 200\n"))
	if want := "swarm.conn_mgr.low_water: expected at most swarm.conn_mgr.high_water (200), got 300"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestAPITCPMustBeLoopbackLiteral(t *testing.T) {
	good := []string{"127.0.0.1:5050", "127.0.0.1:0", "127.1.2.3:65535", "[::1]:5050", ""}
	bad := []string{
		"127.evil:1", "127.evil.com:80", "127.0.0.1.evil.com:80", "localhost:5050", "0.0.0.0:5050",
		"10.0.0.1:5050", "[::]:5050", "[::ffff:127.0.0.1]:5050", "[fe80::1%lo]:5050", "[::1%lo]:5050",
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1", ":5050", "[127.0.0.1]:5050",
		"128.0.0.1:1", "127.0.0.1:80:80",
	}
	for _, s := range good {
		c := Default()
		c.API.TCP = s
		if err := c.Validate(); err != nil {
			t.Errorf("api.tcp %q refused: %v", s, err)
		}
	}
	for _, s := range bad {
		c := Default()
		c.API.TCP = s
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "api.tcp: expected a loopback IP address and port") || !strings.Contains(err.Error(), fmt.Sprintf("got %q", s)) {
			t.Errorf("api.tcp %q: error %v", s, err)
		}
	}
}

func TestPublicRangesValidated(t *testing.T) {
	good := [][]string{{}, {"10.200.0.0/16"}, {"100.64.0.0/10", "2001:db8::/32"}}
	for _, g := range good {
		c := Default()
		c.Swarm.PublicRanges = g
		if err := c.Validate(); err != nil {
			t.Errorf("public_ranges %q: %v", g, err)
		}
	}
	for _, b := range []struct{ v, want string }{
		{"10.200.0.1/16", "host bits set; did you mean 10.200.0.0/16?"},
		{"10.200.0.0", "not a CIDR"},
		{"127.0.0.0/8", "overlaps loopback"},
		{"0.0.0.0/0", "overlaps loopback"},
		{"::/0", "within 2000::/3"},
		{"fd00::/8", "within 2000::/3"},
		{"::ffff:10.0.0.0/104", "IPv4-mapped"},
	} {
		c := Default()
		c.Swarm.PublicRanges = []string{b.v}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "swarm.public_ranges: expected a CIDR") ||
			!strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), fmt.Sprintf("got %q", b.v)) {
			t.Errorf("public_ranges %q: error %v, want one naming the setting and %q", b.v, err, b.want)
		}
	}
	c := Default()
	for i := range MaxPublicRanges + 1 {
		c.Swarm.PublicRanges = append(c.Swarm.PublicRanges, fmt.Sprintf("10.%d.0.0/16", i))
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "swarm.public_ranges: expected at most 64 CIDRs, got 65") {
		t.Errorf("65 public ranges: %v", err)
	}
}
