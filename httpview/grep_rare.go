package httpview

import "bytes"

// rareIndex returns a function that finds lit in a block like bytes.Index,
// by looking for lit's rarest byte (in log text) with bytes.IndexByte and
// checking lit around each hit, as ripgrep and GNU grep do. bytes.Index
// looks for lit's first byte, which in a log is often a common letter
// ("code=" starts with 'c'): many false starts, each one a call.
func rareIndex(lit []byte) func([]byte) int {
	if len(lit) < 2 {
		return func(b []byte) int { return bytes.Index(b, lit) }
	}
	at := 0
	for i := range lit {
		if byteRank[lit[i]] < byteRank[lit[at]] {
			at = i
		}
	}
	rare := lit[at]
	return func(b []byte) int {
		for from := at; from < len(b); {
			i := bytes.IndexByte(b[from:], rare)
			if i < 0 {
				return -1
			}
			start := from + i - at
			if start+len(lit) <= len(b) && bytes.Equal(b[start:start+len(lit)], lit) {
				return start
			}
			from += i + 1
		}
		return -1
	}
}

// byteRank orders bytes by how common they are in log text (higher is
// more common): a rough order, not measured on any corpus but the
// usual English letter frequencies, with digits and the punctuation of
// timestamps and key=value pairs common, capitals and other symbols rare.
var byteRank = func() [256]byte {
	var r [256]byte
	for i, c := range "zqxjkvbpygfwmucldrhsnioate" {
		r[c] = byte(100 + 4*i)        // lower case: 100 (z) .. 200 (e)
		r[c-'a'+'A'] = byte(40 + 2*i) // capitals: 40 (Z) .. 90 (E)
	}
	for c := '0'; c <= '9'; c++ {
		r[c] = 180
	}
	for _, c := range ".:-/=,\"_[]()" {
		r[c] = 210
	}
	r['\t'] = 120
	r[' '] = 255
	return r
}()
