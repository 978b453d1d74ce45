package otlpread

import "net/http"

// DefaultMaxLineBytes caps one JSON line (a batch of spans). The buffer
// grows to this size only when a line needs it.
const DefaultMaxLineBytes = 256 << 20

type config struct {
	maxLineBytes int
	httpClient   *http.Client
	decoders     int
}

func newConfig(opts []Option) config {
	c := config{maxLineBytes: DefaultMaxLineBytes, httpClient: http.DefaultClient}
	for _, o := range opts {
		c = o.apply(c)
	}
	return c
}

// Option configures a Reader.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithMaxLineBytes sets the longest line (and the largest Jaeger response)
// the reader accepts; n <= 0 restores DefaultMaxLineBytes.
func WithMaxLineBytes(n int) Option {
	return optionFunc(func(c config) config {
		if n <= 0 {
			n = DefaultMaxLineBytes
		}
		c.maxLineBytes = n
		return c
	})
}

// WithHTTPClient sets the client used for Jaeger requests.
func WithHTTPClient(hc *http.Client) Option {
	return optionFunc(func(c config) config {
		if hc != nil {
			c.httpClient = hc
		}
		return c
	})
}

// WithDecoders sets how many lines are decoded in parallel; n <= 0 (the
// default) uses half of GOMAXPROCS, at least 1 and at most 8.
func WithDecoders(n int) Option {
	return optionFunc(func(c config) config {
		c.decoders = n
		return c
	})
}
