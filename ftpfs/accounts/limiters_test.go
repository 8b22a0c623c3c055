package accounts

import "testing"

func TestBurstFor(t *testing.T) {
	tests := []struct {
		rate Rate
		want int
	}{
		{1, 1},
		{1000, 1000},
		{100 << 10, 4 << 10},
		{1 << 20, 32 << 10},
		{1 << 30, 256 << 10},
	}
	for _, tt := range tests {
		if got := BurstFor(tt.rate); got != tt.want {
			t.Errorf("BurstFor(%d) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

// TestLimitersOneBucketPerAccount: every door asking for an account's
// downloads gets the same bucket, whose rate follows the last ask.
func TestLimitersOneBucketPerAccount(t *testing.T) {
	ls := NewLimiters()
	a := ls.Get("n1", false, 1<<20)
	if b := ls.Get("n1", false, 1<<20); a == nil || a != b {
		t.Fatalf("two buckets for n1's downloads: %p %p", a, b)
	}
	if up := ls.Get("n1", true, 1<<20); up == a {
		t.Fatal("uploads and downloads share a bucket")
	}
	if o := ls.Get("n2", false, 1<<20); o == a {
		t.Fatal("n2 shares n1's bucket")
	}
	if c := ls.Get("n1", false, 2<<20); c != a || c.Limit() != 2<<20 {
		t.Fatalf("changed rate: bucket %p limit %v", c, c.Limit())
	}
	if ls.Get("n1", false, 0) != nil {
		t.Fatal("rate 0 is not unlimited")
	}
}
