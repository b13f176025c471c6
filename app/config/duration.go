package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// duration is a time.Duration that also accepts days ("7d", "1d12h").
type duration time.Duration

// Decode implements envconfig.Decoder.
func (d *duration) Decode(v string) error {
	p, err := parseDuration(v)
	*d = duration(p)
	return err
}

// parseDuration reads Go durations (90s, 10m, 24h) and days (7d, 1d12h), up to the longest
// a time.Duration holds (maxDays, about 292 years); a longer one is refused as such, never
// wrapped around into a negative or a shorter duration.
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.Atoi(v[:i])
		if err != nil && isDigits(strings.TrimPrefix(v[:i], "+")) {
			return 0, tooLong() // more digits than an int holds
		}
		if err != nil || n < 0 {
			return 0, notDuration()
		}
		if n > maxDays {
			return 0, tooLong()
		}
		days, v = time.Duration(n)*24*time.Hour, v[i+1:]
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil && goDuration.MatchString(v) {
		return 0, tooLong() // well formed: only its size failed
	}
	if err != nil || d < 0 {
		return 0, notDuration()
	}
	if d > math.MaxInt64-days {
		return 0, tooLong()
	}
	return days + d, nil
}

// maxDays is the most whole days a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

// goDuration is the form time.ParseDuration reads, without a sign.
var goDuration = regexp.MustCompile(`^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// durationError says what is wrong with a duration, for the caller to name the setting and
// quote the value.
type durationError string

func (e durationError) Error() string { return string(e) }

func notDuration() error {
	return durationError("is not a duration such as 90s, 10m, 24h or 7d")
}

func tooLong() error {
	return durationError(fmt.Sprintf("is longer than the longest duration accepted, %dd (about 292 years)", maxDays))
}
