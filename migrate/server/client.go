package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/migtrace/migtrace/migrate"
)

// Client talks to one instance server's HTTP API, the API that Server
// serves.
type Client struct {
	http   *http.Client
	scheme string
	addr   string
}

// NewClient returns a client of the server at addr (its --listen
// address). hc carries the timeouts and, for a TLS server, the client
// certificate; secure selects https.
func NewClient(addr string, hc *http.Client, secure bool) *Client {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{http: hc, scheme: scheme, addr: addr}
}

// Addr is the server's address.
func (c *Client) Addr() string { return c.addr }

// APIError is a non-2xx answer: its status and the server's reason.
type APIError struct {
	Method, URL string
	StatusCode  int
	Status      string
	Reason      string // the ErrorResponse message, if the body had one
}

func (e *APIError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s: %s: %s", e.Method, e.URL, e.Status, e.Reason)
	}
	return fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
}

// Instance returns GET /v1/instance.
func (c *Client) Instance(ctx context.Context) (InstanceStatus, error) {
	var st InstanceStatus
	err := c.Do(ctx, http.MethodGet, InstancePath, nil, &st)
	return st, err
}

// StartMigration posts a MigrateRequest: this server pulls the VM from the
// server at source. It returns the new migration's id.
func (c *Client) StartMigration(ctx context.Context, req MigrateRequest) (string, error) {
	var resp MigrateResponse
	if err := c.Do(ctx, http.MethodPost, MigratePath, req, &resp); err != nil {
		return "", err
	}
	return resp.ID, nil
}

// Do sends body (if not nil) as JSON and decodes a 2xx answer into out
// (if not nil). A non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	url := c.scheme + "://" + c.addr + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the response: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Method: method, URL: url, StatusCode: resp.StatusCode, Status: resp.Status}
		var er ErrorResponse
		if json.Unmarshal(data, &er) == nil {
			e.Reason = er.Error
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the response: %w", method, url, err)
		}
	}
	return nil
}

// Handoff returns the server's side of migration id's handoff. A server
// without a record of id answers 404: migrate.ErrUnknownMigration.
func (c *Client) Handoff(ctx context.Context, id string) (HandoffStatus, error) {
	var st HandoffStatus
	err := c.Do(ctx, http.MethodGet, HandoffPath+id, nil, &st)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
		return st, fmt.Errorf("%w: %w", migrate.ErrUnknownMigration, err)
	}
	return st, err
}

// Resolve settles a pending handoff of migration id on this server.
func (c *Client) Resolve(ctx context.Context, id string, action migrate.Resolution) (HandoffStatus, error) {
	var st HandoffStatus
	err := c.Do(ctx, http.MethodPost, HandoffPath+id+"/resolve", ResolveRequest{Action: string(action)}, &st)
	return st, err
}
