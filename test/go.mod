module github.com/pixelstream/pixelstream/test

go 1.26.8

require (
	github.com/pixelstream/pixelstream/pkg v0.0.0-00010101000000-000000000000
	github.com/twmb/franz-go/pkg/kfake v0.0.0-20260918054303-01f206a7e32c
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/segmentio/kafka-go v0.4.51 // indirect
	github.com/twmb/franz-go v1.22.3 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// The workspace (go.work) resolves this; the replace keeps GOWORK=off builds working.
replace github.com/pixelstream/pixelstream/pkg => ../pkg
