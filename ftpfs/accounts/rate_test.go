package accounts

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
	}{
		{"", 0},
		{"0", 0},
		{"0B", 0},
		{"0MiB/s", 0},
		{"1000", 1000},
		{"1000B", 1000},
		{"500KB", 500_000},
		{"500kB", 500_000},
		{"300KiB", 300 * 1024},
		{"10MiB", 10 << 20},
		{"10MiB/s", 10 << 20},
		{" 10 MiB /s ", 10 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"3MB", 3_000_000},
		{"4GB", 4_000_000_000},
		{"5TB", 5_000_000_000_000},
		{"1.5MiB", 1536 << 10},
		{"0.5KB", 500},
		{"0.0", 0},
		{"9223372036854775807", 9223372036854775807},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if err != nil {
				t.Fatalf("ParseRate(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseRate(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRateErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // part of the message besides the value itself
	}{
		{"-1", "negative"},
		{"-10MiB", "negative"},
		{"abc", "want a number"},
		{"MiB", "want a number"},
		{"10Mb", `unknown unit "Mb"`},
		{"10mib", `unknown unit "mib"`},
		{"10M", "ambiguous"},
		{"10k", "ambiguous"},
		{"10G", "ambiguous"},
		{"1e3", "unknown unit"},
		{"1.2.3KiB", "bad number"},
		{".", "bad number"},
		{"0.1", "below 1 byte"},
		{"0.0001KiB", "below 1 byte"},
		{"9223372036854775808", "too large"},
		{"9000000TiB", "too large"},
		{"1e308", "unknown unit"},
		{"99999999999999999999.5TiB", "too large"},
		{"10MiB/s/s", "unknown unit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if err == nil {
				t.Fatalf("ParseRate(%q) = %d, want an error", tt.in, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"`+tt.in+`"`) {
				t.Errorf("error %q does not name the value %q", msg, tt.in)
			}
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not say %q", msg, tt.wantErr)
			}
		})
	}
}

func TestRateStringRoundTrip(t *testing.T) {
	tests := []struct {
		r    Rate
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1KB"},
		{1023, "1023"},
		{1024, "1KiB"},
		{300 << 10, "300KiB"},
		{10 << 20, "10MiB"},
		{1536 << 10, "1536KiB"},
		{1 << 30, "1GiB"},
		{3 << 40, "3TiB"},
		{500_000, "500KB"},
		{2_000_000, "2MB"},
		{7_000_000_000, "7GB"},
		{1_000_000_000_000, "1TB"},
		{1234567, "1234567"},
		{1024000, "1000KiB"},
		{1 << 50, "1024TiB"},
		{9223372036854775807, "9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("Rate(%d).String() = %q, want %q", int64(tt.r), got, tt.want)
			}
			back, err := ParseRate(tt.r.String())
			if err != nil {
				t.Fatalf("ParseRate(%q): %v", tt.r.String(), err)
			}
			if back != tt.r {
				t.Errorf("round trip of %d gave %d", int64(tt.r), int64(back))
			}
		})
	}
}

func TestRateFlag(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	var r Rate
	fs.Var(&r, "max-upload-rate", "limit")
	if err := fs.Parse([]string{"--max-upload-rate", "300KiB"}); err != nil {
		t.Fatal(err)
	}
	if r != 300<<10 {
		t.Errorf("flag set %d, want %d", r, 300<<10)
	}
	f := fs.Lookup("max-upload-rate")
	if f.Value.Type() != "rate" || f.Value.String() != "300KiB" {
		t.Errorf("flag type %q value %q, want rate 300KiB", f.Value.Type(), f.Value.String())
	}
	err := fs.Parse([]string{"--max-upload-rate", "10Mb"})
	if err == nil || !strings.Contains(err.Error(), "10Mb") {
		t.Errorf("bad flag value: err = %v, want one naming 10Mb", err)
	}
}

func TestRateYAML(t *testing.T) {
	type doc struct {
		R Rate `yaml:"r,omitempty"`
	}
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{in: "r: 10MiB", want: 10 << 20},
		{in: "r: 1000", want: 1000},
		{in: "r: '500KB/s'", want: 500_000},
		{in: "r:", want: 0},
		{in: "r: 0", want: 0},
		{in: "r: 1.5KiB", want: 1536},
		{in: "r: 10Mb", wantErr: "unknown unit"},
		{in: "r: -3", wantErr: "negative"},
		{in: "r: [1, 2]", wantErr: "got a list"},
		{in: "r: {a: 1}", wantErr: "got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d doc
			err := yaml.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal(%q): err = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%q): %v", tt.in, err)
			}
			if d.R != tt.want {
				t.Errorf("Unmarshal(%q) = %d, want %d", tt.in, d.R, tt.want)
			}
			out, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back doc
			if err := yaml.Unmarshal(out, &back); err != nil || back != d {
				t.Errorf("YAML round trip %q -> %q -> %v (err %v)", tt.in, out, back, err)
			}
			if tt.want == 0 && len(strings.TrimSpace(string(out))) > 2 {
				t.Errorf("zero rate not omitted: %q", out)
			}
		})
	}
	out, err := yaml.Marshal(doc{R: 10 << 20})
	if err != nil || strings.TrimSpace(string(out)) != "r: 10MiB" {
		t.Errorf("Marshal = %q (err %v), want \"r: 10MiB\"", out, err)
	}
}
