package demo

import "testing"

func TestBase58(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("hello world"), "StV1DL6CwTryKyV"},
		{[]byte{0, 0, 1}, "112"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := base58(tt.in); got != tt.want {
			t.Errorf("base58(%x) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
