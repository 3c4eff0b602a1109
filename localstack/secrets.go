package localstack

import (
	"net/http"
	"sync"
)

// secretReads lets one Secrets Manager GetSecretValue through to the emulator at a time.
// kumo v0.33.1 records a secret's LastAccessedDate on every GetSecretValue while it holds
// only its storage's read lock, so two reads at once are a data race in this process: the
// race detector fails any -race test in which several function instances start together
// and read their secrets (the dev stack starts them on demand, in parallel).
// TestConcurrentSecretReads shows it; when kumo takes its write lock there, this can go.
type secretReads struct{ mu sync.Mutex }

func (s *secretReads) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue" {
			s.mu.Lock()
			defer s.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}
