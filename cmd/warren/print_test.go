package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/warren-p2p/warren/client"
)

// recv/sub --json keep the payload base64 and add "text" exactly when it is
// valid UTF-8, so that `jq -r .text` prints it.
func TestJSONRecordText(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		text    string // "" with absent
		absent  bool
	}{
		{[]byte("héllo\nworld"), "héllo\nworld", false},
		{[]byte{}, "", false},
		{[]byte{0xff, 0xfe, 'x'}, "", true},
	} {
		b, err := json.Marshal(receivedJSON{&client.ReceivedMessage{Type: "t", Payload: tc.payload}, textOf(tc.payload)})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		text, has := m["text"]
		if has == tc.absent || (has && text != tc.text) || !strings.Contains(string(b), `"payload":"`) {
			t.Errorf("payload %q: %s", tc.payload, b)
		}
		// sub --json names the payload as recv --json does.
		b, _ = json.Marshal(newTopicJSON(&client.TopicMessage{Topic: "t", Data: tc.payload}))
		if strings.Contains(string(b), `"text"`) == tc.absent || !strings.Contains(string(b), `"payload":"`) || strings.Contains(string(b), `"data"`) {
			t.Errorf("topic data %q: %s", tc.payload, b)
		}
	}
}
