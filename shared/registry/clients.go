package registry

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
)

// NewClients returns a directory.Source for each registry, by ID. secret reads a Secrets
// Manager secret: a registry's API credential (credentials_secret), and the client
// certificate it presents to a registry that requires mutual TLS
// (client_certificate_secret). The registries share one outbound client of network, but a
// registry with a client certificate gets its own, which presents the certificate; the
// outbound guard applies to every one.
func NewClients(ctx context.Context, regs []federation.Registry, network outbound.Options, opts Options,
	secret func(ctx context.Context, name string) (string, error)) (map[string]directory.Source, error) {
	shared := outbound.NewClient(network)
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
		httpClient := shared
		if reg.ClientCertificateSecret != "" {
			pem, err := secret(ctx, reg.ClientCertificateSecret)
			if err != nil {
				return nil, fmt.Errorf("registry %s: %w", reg.ID, err)
			}
			cert, err := parseClientCertificate(pem)
			if err != nil {
				return nil, fmt.Errorf("registry %s: secret %s: %w", reg.ID, reg.ClientCertificateSecret, err)
			}
			n := network
			n.ClientCertificates = []tls.Certificate{cert}
			httpClient = outbound.NewClient(n)
		}
		c, err := New(reg, httpClient, o)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", reg.ID, err)
		}
		clients[reg.ID] = c
	}
	return clients, nil
}
