package controlapi

import (
	"context"
	"net/http"
	"time"
)

// PageCodeRequest is POST /v1/page/code: a one-time code that opens the
// local page at Path (a local path such as "/setup"; empty: "/").
type PageCodeRequest struct {
	Path string `json:"path,omitempty"`
}

// PageCode is the answer of POST /v1/page/code: the URL to open in a
// browser (it carries the one-time code) and when the code expires.
// The URL logs the browser in once; treat it as a credential until
// then.
type PageCode struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// PageURL mints a one-time code for the local page and answers with the
// URL that trades it for a session and then shows path (POST
// /v1/page/code).
func (c *Client) PageURL(ctx context.Context, path string) (PageCode, error) {
	return call[PageCode](ctx, c, http.MethodPost, "/v1/page/code", PageCodeRequest{Path: path})
}
