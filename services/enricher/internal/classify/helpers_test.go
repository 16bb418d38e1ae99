package classify

import (
	"sync"
	"testing"

	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
)

// testParser is the real uap-go parser the enricher uses, built once: New
// compiles every expression (~60 ms).
var testParser = sync.OnceValues(func() (*device.Parser, error) {
	return device.New("", 1000)
})

// parseUA runs the real device parser on ua.
func parseUA(tb testing.TB, ua string) *device.Result {
	tb.Helper()
	p, err := testParser()
	if err != nil {
		tb.Fatal(err)
	}
	var d device.Result
	p.Parse([]byte(ua), &d)
	return &d
}
