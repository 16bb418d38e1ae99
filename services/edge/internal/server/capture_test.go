package server

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newCapture returns a debug-level logger that stores the last message
// field it writes into *out.
func newCapture(out *string) *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(writerFunc(func(p []byte) {
		*out = string(p)
	})), zap.DebugLevel))
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
