//go:build race

package device

// raceEnabled is true when the tests run with the race detector, under which
// plain uap-go parses take ~20 ms each.
const raceEnabled = true
