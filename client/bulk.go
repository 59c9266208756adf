package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// postBulk posts body to a bulk endpoint, as lines or (ndjson) NDJSON
// lines, and decodes the answer; an error answer's body is decoded into
// errBody too. The daemon handles each line as it reads it.
func postBulk[T any](ctx context.Context, c *Client, endpoint string, q url.Values, ndjson bool, body io.Reader, errBody any) (T, error) {
	var v T
	ct := ContentTypeLines
	if ndjson {
		ct = ContentTypeNDJSON
	}
	resp, err := c.sendBody(ctx, http.MethodPost, endpoint+"?"+q.Encode(), ct, io.NopCloser(body), errBody)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return v, fmt.Errorf("API POST %s: decode answer: %w", endpoint, err)
	}
	return v, nil
}
