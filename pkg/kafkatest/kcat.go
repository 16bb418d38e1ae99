package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kcat consumes the whole of topic (every partition, from the beginning to
// the current end) with the independent kcat binary (librdkafka), not with our
// own client library, and returns the record values in the order kcat printed
// them (offset order within a partition; partitions interleaved). A null value
// is returned as nil. Values may hold any bytes: kcat prints each one prefixed
// by its length. If kcat is not installed it fails the test under CI=true and
// skips it otherwise; a kcat error or the timeout fails the test.
func Kcat(t testing.TB, brokers []string, topic string, timeout time.Duration) [][]byte {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if isCI() {
			t.Fatalf("kafkatest: kcat is not installed but CI=true requires it (Debian: apt-get install -y kcat)")
			return nil
		}
		t.Skipf("kcat is not installed (Debian: apt-get install -y kcat): skipping the independent-client check")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path,
		"-C", "-b", strings.Join(brokers, ","), "-t", topic,
		"-o", "beginning", "-e", "-q",
		// <value length> SP <value> LF; length is -1 for a null value.
		"-f", `%S %s\n`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: kcat on %s did not finish within %v (stderr: %s)", topic, timeout, strings.TrimSpace(stderr.String()))
			return nil
		}
		t.Fatalf("kafkatest: kcat on %s: %v (stderr: %s)", topic, err, strings.TrimSpace(stderr.String()))
		return nil
	}
	values, err := parseKcat(stdout.Bytes())
	if err != nil {
		t.Fatalf("kafkatest: parsing kcat output for %s: %v", topic, err)
		return nil
	}
	return values
}

// parseKcat parses kcat output in the format `%S %s\n`.
func parseKcat(b []byte) ([][]byte, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	values := [][]byte{}
	for {
		lenField, err := r.ReadString(' ')
		if errors.Is(err, io.EOF) && lenField == "" {
			return values, nil
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: reading the length: %w", len(values), err)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenField, " "))
		if err != nil || n < -1 {
			return nil, fmt.Errorf("record %d: bad length %q", len(values), lenField)
		}
		var v []byte
		if n >= 0 {
			v = make([]byte, n)
			if _, err := io.ReadFull(r, v); err != nil {
				return nil, fmt.Errorf("record %d: reading %d value bytes: %w", len(values), n, err)
			}
		}
		if c, err := r.ReadByte(); err != nil || c != '\n' {
			return nil, fmt.Errorf("record %d: missing record terminator", len(values))
		}
		values = append(values, v)
	}
}
