package netname

import "testing"

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"warren": true, "a": true, "A-1_b.c": true, "0x": true,
		"": false, "-a": false, ".a": false, "a b": false, "a/b": false, "é": false,
		string(make([]byte, 65)): false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v; expected %v", s, got, want)
		}
	}
	long := ""
	for range MaxLen {
		long += "x"
	}
	if !Valid(long) || Valid(long+"x") {
		t.Error("MaxLen is not the bound")
	}
	if Check("a b") == nil || Check(Default) != nil {
		t.Error("Check disagrees with Valid")
	}
}
