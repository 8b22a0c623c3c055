package iec

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 12<<20 + 300<<10: "12.3 MiB",
		5 << 30: "5.0 GiB", -2048: "-2.0 KiB", 1 << 62: "4.0 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Rate(4.1 * (1 << 20)); got != "4.1 MiB/s" {
		t.Errorf("Rate = %q", got)
	}
}
