package visitor

import (
	"errors"
	"time"
)

// Day is a UTC calendar day, counted in days since 1970-01-01. Salts rotate
// at 00:00 UTC, so a Day is the unit a salt belongs to. It is an integer, not
// a time.Time, so that the hot path can pick a salt with one division and no
// calendar arithmetic.
type Day int64

const secondsPerDay = 24 * 60 * 60

// DayOf returns the UTC day that t falls on, whatever t's location.
func DayOf(t time.Time) Day {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 { // floor division for instants before 1970
		d--
	}
	return Day(d)
}

// Start returns 00:00:00 UTC of d.
func (d Day) Start() time.Time { return time.Unix(int64(d)*secondsPerDay, 0).UTC() }

// String returns d as "2006-01-02", the key of d's record in the salts topic.
func (d Day) String() string { return string(d.AppendText(make([]byte, 0, 10))) }

// AppendText appends d as "2006-01-02" to b.
func (d Day) AppendText(b []byte) []byte { return d.Start().AppendFormat(b, time.DateOnly) }

// errBadDay is returned by ParseDay for anything but a "2006-01-02" date.
var errBadDay = errors.New("visitor: a day must be a UTC date like 2006-01-02")

// ParseDay parses the "2006-01-02" form written by String. It is strict
// (exactly ten characters, a real calendar date) because the salts topic's
// keys decide which salt a day gets on every instance.
func ParseDay(s string) (Day, error) {
	if len(s) != len(time.DateOnly) {
		return 0, errBadDay
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, errBadDay
	}
	return DayOf(t), nil
}
