// The benchmark harness (make bench-load) is its own module so that its
// dependencies (fasthttp for the bare baseline server, franz-go for the
// end-to-end consumer) stay out of the test module. It is built with
// GOWORK=off; the replace points at the workspace's pkg module.
module github.com/pixelstream/pixelstream/test/bench

go 1.26.8

require (
	github.com/pixelstream/pixelstream/pkg v0.0.0-00010101000000-000000000000
	github.com/segmentio/kafka-go v0.4.51
	github.com/twmb/franz-go v1.22.3
	github.com/valyala/fasthttp v1.78.0
)

replace github.com/pixelstream/pixelstream/pkg => ../../pkg
