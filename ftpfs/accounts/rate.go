package accounts

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Rate is a transfer rate limit in bytes per second; 0 means unlimited (or,
// on a User, "the server default").
//
// Its text form is a number with an optional unit and an optional "/s":
// "1000" (bytes), "500KB" or "500kB" (SI, 1000), "300KiB" (binary, 1024),
// "10MiB/s", "1.5GiB". Units are case-sensitive on purpose: "Mb" would
// commonly mean megabits, which is not what this type counts.
//
// Rate is a pflag.Value (so it can be a flag of type "rate") and a YAML
// (un)marshaler that writes the text form and reads either the text form or
// a plain integer of bytes per second.
type Rate int64

var (
	_ pflag.Value      = (*Rate)(nil)
	_ yaml.Marshaler   = Rate(0)
	_ yaml.Unmarshaler = (*Rate)(nil)
)

// rateUnits maps each accepted unit to its factor. Bare "K", "M" and "G"
// are not accepted: they are ambiguous between 1000 and 1024.
var rateUnits = map[string]int64{
	"":    1,
	"B":   1,
	"kB":  1e3,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"TiB": 1 << 40,
}

// rateUnitList is the help text naming the accepted units.
const rateUnitList = "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"

// ParseRate parses a rate such as "300KiB", "10MiB/s", "500KB" or "1000"
// (bytes per second). "" and "0" mean unlimited. Negative values, unknown
// or ambiguous units, and non-zero values below one byte per second (which
// would silently become "unlimited") are errors that name the value.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSpace(strings.TrimSuffix(t, "/s"))
	if t == "" {
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("invalid rate %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid rate %q: want a number with an optional unit, such as 10MiB", s)
	}
	factor, ok := rateUnits[unit]
	if !ok {
		switch unit {
		case "K", "k", "M", "G", "T":
			return 0, fmt.Errorf("invalid rate %q: unit %q is ambiguous; write %siB (powers of 1024) or %sB (powers of 1000)", s, unit, strings.ToUpper(unit), unit)
		}
		return 0, fmt.Errorf("invalid rate %q: unknown unit %q (use %s)", s, unit, rateUnitList)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/factor {
			return 0, fmt.Errorf("invalid rate %q: too large", s)
		}
		return Rate(n * factor), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid rate %q: bad number %q", s, num)
	}
	v := math.Round(f * float64(factor))
	switch {
	case v >= math.MaxInt64:
		return 0, fmt.Errorf("invalid rate %q: too large", s)
	case v < 1 && f != 0:
		// Rounding to 0 would turn a tiny limit into no limit at all.
		return 0, fmt.Errorf("invalid rate %q: below 1 byte per second (use 0 for unlimited)", s)
	}
	return Rate(v), nil
}

// String returns the rate in the unit that writes it exactly with the
// smallest number, binary units winning a tie: "10MiB", "500KB", "1TB",
// "1234"; "0" for unlimited. The result parses back to the same Rate with
// ParseRate.
func (r Rate) String() string {
	if r <= 0 {
		return strconv.FormatInt(int64(r), 10)
	}
	best, bestUnit := int64(r), ""
	for _, u := range []struct {
		name   string
		factor int64
	}{
		{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	} {
		if int64(r)%u.factor == 0 && int64(r)/u.factor < best {
			best, bestUnit = int64(r)/u.factor, u.name
		}
	}
	return strconv.FormatInt(best, 10) + bestUnit
}

// Set parses s with ParseRate (pflag.Value).
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Type names the flag type in help output (pflag.Value).
func (r *Rate) Type() string { return "rate" }

// MarshalYAML writes the rate in its text form, e.g. "10MiB".
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// UnmarshalYAML reads a rate from a scalar: the text form ("10MiB") or an
// integer of bytes per second. An empty value means unlimited.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("invalid rate: want a value such as 10MiB, got a %s", nodeKindName(n.Kind))
	}
	if n.Tag == "!!null" {
		*r = 0
		return nil
	}
	return r.Set(n.Value)
}

// nodeKindName names a YAML node kind for error messages.
func nodeKindName(k yaml.Kind) string {
	switch k {
	case yaml.DocumentNode:
		return "document"
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	}
	return "nothing"
}
