package registry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// NewClients returns a directory.Source for each registry, by ID, with the credential secret reads
// for a registry that names one.
func NewClients(ctx context.Context, regs []federation.Registry, httpClient *http.Client, opts Options,
	secret func(ctx context.Context, name string) (string, error)) (map[string]directory.Source, error) {
	clients := make(map[string]directory.Source, len(regs))
	for _, reg := range regs {
		o := opts
		if reg.CredentialsSecret != "" {
			token, err := secret(ctx, reg.CredentialsSecret)
			if err != nil {
				return nil, fmt.Errorf("registry %s: %w", reg.ID, err)
			}
			o.Credential = token
		}
		c, err := New(reg, httpClient, o)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", reg.ID, err)
		}
		clients[reg.ID] = c
	}
	return clients, nil
}
