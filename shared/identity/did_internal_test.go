package identity

import (
	"net/url"
	"strings"
	"testing"
)

func TestDIDWebURL(t *testing.T) {
	tests := []struct{ did, url, host string }{
		{"did:web:example.com", "https://example.com/.well-known/did.json", "example.com"},
		{"did:web:Example.COM:user:alice", "https://example.com/user/alice/did.json", "example.com"},
		{"did:web:localhost%3A8443", "https://localhost:8443/.well-known/did.json", "localhost:8443"},
		{"did:web:example.com:a%20b", "https://example.com/a%20b/did.json", "example.com"},
		{"did:web:", "", ""},
		{"did:web:example.com:..", "", ""},
		{"did:web:example.com::x", "", ""},
		{"did:web:example.com:a%2Fb", "", ""},
		{"did:web:ex_ample.com", "", ""},
		{"did:web:user%40example.com", "", ""},
		{"did:web:example.com%3A", "", ""},
		{"did:web:%5B::1%5D", "", ""},
		{"did:web:example.com/x", "", ""},
	}
	for _, tt := range tests {
		u, host, err := DIDWebURL(tt.did)
		if tt.url == "" {
			if err == nil {
				t.Errorf("%s: accepted as %s", tt.did, u)
			}
			continue
		}
		if err != nil || u != tt.url || host != tt.host {
			t.Errorf("%s = %s %s %v; want %s %s", tt.did, u, host, err, tt.url, tt.host)
		}
	}
}

// FuzzDIDWebURL: whatever the DID, the URL resolved is https, on the host reported, and
// its path never climbs out of the host's root.
func FuzzDIDWebURL(f *testing.F) {
	for _, s := range []string{"did:web:example.com", "did:web:example.com:u:a", "did:web:h%3A1", "did:web:a%2F..", "did:web:x:%2e%2e", "did:web:a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, did string) {
		raw, host, err := DIDWebURL(did)
		if err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host != host || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%q -> %q (%q): %v", did, raw, host, err)
		}
		if !strings.HasSuffix(u.Path, "/did.json") || strings.Contains(u.Path, "/../") || strings.Contains(u.Path, "/./") {
			t.Fatalf("%q -> path %q", did, u.Path)
		}
	})
}
